"""keras.callbacks: engine's Callback, History, EarlyStopping, ModelCheckpoint."""
from ..training import Callback, EarlyStopping, History, ModelCheckpoint  # noqa: F401

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint"]
