"""Embeds a Python source file in a C++ header as a raw string constant."""

def embed_python_source(name, src, symbol):
    """Generates <name>.h declaring `inline constexpr char <symbol>[]`."""
    native.genrule(
        name = name,
        srcs = [src],
        outs = [name + ".h"],
        cmd = ("(echo '// Generated from $<.';" +
               " echo '#pragma once';" +
               " echo 'namespace ei::python {';" +
               " echo 'inline constexpr char " + symbol + "[] = R\"PYSRC(';" +
               " cat $<;" +
               " echo ')PYSRC\";';" +
               " echo '}  // namespace ei::python') > $@"),
    )
