"""Task suites: the protocol, the procedural synthetic distribution, the real-data and
held-out suites, and the registry."""

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
from curriculum_rl.suites.digits_conv import DigitsConvSuite
from curriculum_rl.suites.mnist1d import Mnist1dSuite
from curriculum_rl.suites.near_zero import NearZeroSuite
from curriculum_rl.suites.registry import (
    FixedSuite,
    register_suite,
    registered_suites,
    resolve_suite,
    resolve_suites,
)
from curriculum_rl.suites.scales import ScalesSuite
from curriculum_rl.suites.sequence import SequenceSuite
from curriculum_rl.suites.sequence_family import SequenceFamilySuite
from curriculum_rl.suites.synthetic import SyntheticSetting, SyntheticSuite
from curriculum_rl.suites.tabular import TabularSuite
from curriculum_rl.suites.teacher import TeacherAuxSuite
from curriculum_rl.suites.tokens import TokensSuite
from curriculum_rl.suites.tokens_family import TokensFamilySuite

__all__ = [
    "Body",
    "DigitsConvSuite",
    "DigitsSuite",
    "FixedSuite",
    "MLPBody",
    "Mnist1dSuite",
    "ModuleBody",
    "NearZeroSuite",
    "ScalesSuite",
    "SequenceFamilySuite",
    "SequenceSuite",
    "Suite",
    "SuiteInstance",
    "SyntheticSetting",
    "SyntheticSuite",
    "TabularSuite",
    "TaskData",
    "TaskSpec",
    "TeacherAuxSuite",
    "TokensFamilySuite",
    "TokensSuite",
    "register_suite",
    "registered_suites",
    "resolve_suite",
    "resolve_suites",
]
