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

def embed_python_package(name, srcs, package, symbol):
    """Generates <name>.h declaring `inline constexpr EmbeddedModule <symbol>[]`:
    each source of `package` (a flat folder of .py files) by module name."""
    native.genrule(
        name = name,
        srcs = srcs,
        outs = [name + ".h"],
        cmd = ("(echo '// Generated from the sources of " + package + ".';" +
               " echo '#pragma once';" +
               " echo '#include \"daemon/python/embedded_module.h\"';" +
               " echo 'namespace ei::python {';" +
               " echo 'inline constexpr EmbeddedModule " + symbol + "[] = {';" +
               " for f in $(SRCS); do" +
               "   b=$$(basename $$f .py);" +
               "   if [ $$b = __init__ ]; then n=" + package + "; p=true;" +
               "   else n=" + package + ".$$b; p=false; fi;" +
               "   echo \"{\\\"$$n\\\", $$p, R\\\"PYSRC(\"; cat $$f; echo ')PYSRC\"},';" +
               " done;" +
               " echo '};';" +
               " echo '}  // namespace ei::python') > $@"),
    )
