"""Task suites: the protocol, the procedural synthetic distribution and the registry."""

from curriculum_rl.suites.base import (
    Body,
    MLPBody,
    ModuleBody,
    Suite,
    SuiteInstance,
    TaskData,
    TaskSpec,
)
from curriculum_rl.suites.registry import register_suite, registered_suites, resolve_suite
from curriculum_rl.suites.synthetic import SyntheticSetting, SyntheticSuite

__all__ = [
    "Body",
    "MLPBody",
    "ModuleBody",
    "Suite",
    "SuiteInstance",
    "SyntheticSetting",
    "SyntheticSuite",
    "TaskData",
    "TaskSpec",
    "register_suite",
    "registered_suites",
    "resolve_suite",
]
