"""A user's small project, written into a folder by the tests that run it.

    script.py        imports its sibling and its package; runs their code
    helpers.py       a sibling module: functions, a class, a module global
    shop/__init__.py a package whose modules import each other relatively
    shop/prices.py
    shop/orders.py   relative imports at the top and inside a function
    shop/tax.py      imported only inside a function, never by the client
    shop/cli.py      run as ``python -m shop.cli``: a relative import in __main__

Nothing of it is on the daemon's ``--python-path``: every call goes by
value, by the client's own choice. ``script.py`` prints ``R<n> <value>``
for each call; ``EXPECTED`` lists those lines.
"""

import os
import textwrap

__all__ = ["EXPECTED", "REPL_LINES", "write_project"]

FILES = {
    "helpers.py": '''
        FACTOR = 3

        def triple(n):
            return FACTOR * n

        class Parcel:
            """A box of width by depth."""

            def __init__(self, width, depth):
                self.width, self.depth = width, depth

            def bigger(self):
                return Parcel(FACTOR * self.width, FACTOR * self.depth)

        def price_of(item):
            import shop.prices  # imported when it runs, in the daemon too
            return shop.prices.price(item)
        ''',
    "shop/__init__.py": '''
        from .prices import PRICES
        ''',
    "shop/prices.py": '''
        PRICES = {"apple": 3, "pear": 5}

        def price(item):
            return PRICES[item]
        ''',
    "shop/orders.py": '''
        from . import prices

        def total(items):
            from .tax import rate  # a submodule the client never imported
            return sum(prices.price(i) for i in items) * rate()

        def where():
            import os
            return __name__, __package__, os.path.basename(__file__)
        ''',
    "shop/tax.py": '''
        def rate():
            return 2
        ''',
    "shop/cli.py": '''
        import extrainterpreters

        def cheapest():
            from .prices import PRICES  # relative, in __main__ of python -m
            return min(PRICES, key=PRICES.get)

        if __name__ == "__main__":
            print("R", extrainterpreters.run(cheapest))
        ''',
    "script.py": '''
        import extrainterpreters
        import helpers
        import shop.orders

        run = extrainterpreters.run
        print("R1", run(helpers.triple, 5))
        print("R2", run(shop.orders.total, ["apple", "pear"]))
        parcel = run(lambda p: p.bigger(), helpers.Parcel(1, 2))
        print("R3", type(parcel) is helpers.Parcel, parcel.width, parcel.depth)
        print("R4", run(helpers.price_of, "pear"))
        print("R5", run(lambda m: m.triple(2), helpers))
        print("R6", run(shop.orders.where))
        ''',
}

EXPECTED = ["R1 15", "R2 16", "R3 True 3 6", "R4 5", "R5 6",
            "R6 ('shop.orders', 'shop', 'orders.py')"]

# The same calls typed at a REPL started in the project's folder.
REPL_LINES = [
    line.strip() for line in textwrap.dedent(FILES["script.py"]).splitlines()
    if line.strip()
]


def write_project(root):
    """Writes the project under ``root``; returns ``root``."""
    for name, text in FILES.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            file.write(textwrap.dedent(text).lstrip())
    return root
