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
from curriculum_rl.suites.digits import DigitsSuite
from curriculum_rl.suites.mnist1d import Mnist1dSuite
from curriculum_rl.suites.registry import (
    FixedSuite,
    register_suite,
    registered_suites,
    resolve_suite,
    resolve_suites,
)
from curriculum_rl.suites.sequence import SequenceSuite
from curriculum_rl.suites.synthetic import SyntheticSetting, SyntheticSuite

__all__ = [
    "Body",
    "DigitsSuite",
    "FixedSuite",
    "MLPBody",
    "Mnist1dSuite",
    "ModuleBody",
    "SequenceSuite",
    "Suite",
    "SuiteInstance",
    "SyntheticSetting",
    "SyntheticSuite",
    "TaskData",
    "TaskSpec",
    "register_suite",
    "registered_suites",
    "resolve_suite",
    "resolve_suites",
]
