"""Pure data passed between Keelson's stages; no I/O, no third-party imports."""
from controller.model.desired import DesiredConfig, DesiredNetwork, DesiredService, DesiredStack
from controller.model.live import LiveObject, LiveService, LiveStack, LiveTask, StackRecord
from controller.model.manifest import BuildSpec, ImageRef, StackManifest
from controller.model.plan import Change, StackPlan
from controller.model.source import Checkout, Revision
from controller.model.status import Condition, HistoryEntry, RolloutResult, StackStatus

__all__ = [
    "BuildSpec", "Change", "Checkout", "Condition", "DesiredConfig", "DesiredNetwork",
    "DesiredService", "DesiredStack", "HistoryEntry", "ImageRef", "LiveObject", "LiveService",
    "LiveStack", "LiveTask", "Revision", "RolloutResult", "StackManifest", "StackPlan",
    "StackRecord", "StackStatus",
]
