"""Unit tests of the rule that says which modules go by value, without a daemon.

The rule reads where a module's file is against the daemon's ``sys.path``
(which the daemon announces in ``hello``); the tests hand it made-up paths.
"""

import importlib
import os
import sys
import tempfile
import types
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402,F401  (makes the client importable)

import extrainterpreters  # noqa: E402
from extrainterpreters import _byvalue_rule  # noqa: E402
from extrainterpreters._byvalue_rule import rule_for  # noqa: E402


class RuleTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="ei-rule-")
        self.name = f"ei_rule_{uuid.uuid4().hex}"
        package = os.path.join(self.root, self.name)
        os.makedirs(package)
        for path in ("__init__.py", "sub.py"):
            open(os.path.join(package, path), "w").close()
        sys.path.insert(0, self.root)
        self.addCleanup(sys.path.remove, self.root)
        self.package = importlib.import_module(self.name)
        self.sub = importlib.import_module(f"{self.name}.sub")
        self.addCleanup(sys.modules.pop, self.name, None)
        self.addCleanup(sys.modules.pop, f"{self.name}.sub", None)
        overrides = dict(_byvalue_rule._overrides)
        self.addCleanup(self._restore_overrides, overrides)

    @staticmethod
    def _restore_overrides(saved):
        _byvalue_rule._overrides.clear()
        _byvalue_rule._overrides.update(saved)
        _byvalue_rule._generation[0] += 1

    def test_modules_outside_the_daemon_path_go_by_value(self):
        rule = rule_for(["/nowhere", os.path.dirname(os.__file__)])
        self.assertTrue(rule.by_value(self.name))
        self.assertTrue(rule.by_value(f"{self.name}.sub"))

    def test_modules_on_the_daemon_path_go_by_reference(self):
        rule = rule_for([self.root])
        self.assertFalse(rule.by_value(self.name))
        self.assertFalse(rule.by_value(f"{self.name}.sub"))
        # The same folder by another name (a symlink) is the same file.
        link = self.root + "-link"
        os.symlink(self.root, link)
        self.addCleanup(os.remove, link)
        self.assertFalse(rule_for([link]).by_value(self.name))

    def test_another_file_of_the_same_name_earlier_on_the_path(self):
        other = tempfile.mkdtemp(prefix="ei-rule-other-")
        os.makedirs(os.path.join(other, self.name))
        open(os.path.join(other, self.name, "__init__.py"), "w").close()
        self.assertTrue(rule_for([other, self.root]).by_value(self.name))
        self.assertFalse(rule_for([self.root, other]).by_value(self.name))

    def test_installed_libraries_go_by_reference(self):
        rule = rule_for(["/nowhere"])  # a daemon with another stdlib
        for name in ("os", "json", "xml.etree.ElementTree", "sys", "_socket"):
            importlib.import_module(name)
            self.assertFalse(rule.by_value(name), name)

    def test_the_client_package_goes_by_reference(self):
        self.assertFalse(rule_for(["/nowhere"]).by_value("extrainterpreters"))
        self.assertFalse(rule_for(["/nowhere"]).by_value(
            "extrainterpreters._byvalue"))

    def test_main_and_modules_made_at_run_time_go_by_value(self):
        rule = rule_for(None)
        self.assertTrue(rule.by_value("__main__"))
        self.assertTrue(rule.by_value(f"not_imported_{uuid.uuid4().hex}"))
        made = types.ModuleType(self.name)  # not the module of that name
        self.assertTrue(rule.module_by_value(made))
        self.assertFalse(rule.module_by_value(self.package))

    def test_without_the_daemon_path_modules_with_files_go_by_reference(self):
        self.assertFalse(rule_for(None).by_value(self.name))

    def test_overrides_apply_to_submodules(self):
        rule = rule_for([self.root])
        extrainterpreters.ship_by_value(self.package)
        self.assertTrue(rule_for([self.root]).by_value(f"{self.name}.sub"))
        self.assertFalse(rule.by_value(self.name))  # a rule made before
        extrainterpreters.ship_by_reference(f"{self.name}.sub")
        now = rule_for([self.root])
        self.assertTrue(now.by_value(self.name))
        self.assertFalse(now.by_value(f"{self.name}.sub"))
        extrainterpreters.ship_by_reference(self.name)
        self.assertFalse(rule_for(["/nowhere"]).by_value(self.name))

    def test_overrides_refuse_main_and_non_modules(self):
        with self.assertRaises(ValueError):
            extrainterpreters.ship_by_reference("__main__")
        with self.assertRaises(TypeError):
            extrainterpreters.ship_by_value(42)


if __name__ == "__main__":
    unittest.main()
