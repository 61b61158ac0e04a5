"""Keras 1 and 2 spellings translated to today's at the boundary (the role of Keras 2's
legacy/interfaces.py): a table of renames and value converters per layer family, applied once
when a layer, model, optimizer or fit call is made, each with one warning naming the new
spelling.  The engine keeps one spelling; nothing below the front ever sees the old ones.
"""
from __future__ import annotations

import difflib
import os
import sys
import warnings

__all__ = ["translate", "unknown_argument", "LegacyWarning"]


class LegacyWarning(DeprecationWarning):
    """A Keras 1/2 spelling was translated; the message gives today's spelling."""


warnings.simplefilter("always", LegacyWarning)


def _dim_ordering(value):
    table = {"th": "channels_first", "tf": "channels_last", "default": None}
    if value not in table:
        raise ValueError(f"dim_ordering must be 'th', 'tf' or 'default', received {value!r}")
    return table[value]


def _identity(value):
    return value


def _use_bias(value):
    return bool(value)


# old name -> (new name, value converter)
_COMMON_WEIGHTS = {
    "init": ("kernel_initializer", _identity),
    "W_regularizer": ("kernel_regularizer", _identity),
    "b_regularizer": ("bias_regularizer", _identity),
    "W_constraint": ("kernel_constraint", _identity),
    "b_constraint": ("bias_constraint", _identity),
    "bias": ("use_bias", _use_bias),
}
_FORMAT = {"dim_ordering": ("data_format", _dim_ordering)}

TABLES = {
    "dense": {"output_dim": ("units", _identity), **_COMMON_WEIGHTS},
    "conv": {"nb_filter": ("filters", _identity), "subsample": ("strides", _identity),
             "border_mode": ("padding", _identity), "atrous_rate": ("dilation_rate", _identity),
             "filter_length": ("kernel_size", _identity),
             "subsample_length": ("strides", _identity), **_COMMON_WEIGHTS, **_FORMAT},
    "pool": {"border_mode": ("padding", _identity), "pool_length": ("pool_size", _identity),
             "stride": ("strides", _identity), **_FORMAT},
    "global_pool": dict(_FORMAT),
    "dropout": {"p": ("rate", _identity)},
    "batchnorm": {"beta_init": ("beta_initializer", _identity),
                  "gamma_init": ("gamma_initializer", _identity)},
    "model": {"input": ("inputs", _identity), "output": ("outputs", _identity)},
    "fit": {"nb_epoch": ("epochs", _identity)},
    "optimizer": {"lr": ("learning_rate", _identity)},
    "flatten": {},
    "none": {},
}

# every old name we know, with today's spelling, for "unknown argument" messages
ALL_RENAMES = {old: new for table in TABLES.values() for old, (new, _) in table.items()}


_HERE = os.path.dirname(os.path.abspath(__file__))
_ENGINE = os.path.dirname(_HERE)


def _caller_level():
    """The stacklevel of the first frame outside engine (the user's line)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_ENGINE):
        frame, level = frame.f_back, level + 1
    return level


def warn(owner, old, new, old_era="Keras 1", new_era="Keras 2 and later"):
    """One LegacyWarning, attributed to the user's line."""
    warnings.warn(f"{owner}: '{old}' is the {old_era} spelling; in {new_era} it is {new}",
                  LegacyWarning, stacklevel=_caller_level())


def translate(owner, family, kwargs):
    """(new kwargs, whether anything was translated).  Each old name gives one warning."""
    table = TABLES[family]
    out, legacy = {}, False
    for key, value in kwargs.items():
        if key in table:
            new, convert = table[key]
            if new in kwargs:
                raise TypeError(f"{owner}: both '{key}' (Keras 1) and '{new}' were given; "
                                f"keep '{new}'")
            warn(owner, key, f"{new}=")
            value = convert(value)
            legacy = True
            if value is None and new == "data_format":
                continue
            out[new] = value
        else:
            out[key] = value
    return out, legacy


def unknown_argument(owner, key, valid):
    """The TypeError for an argument ``owner`` does not take, with the new spelling when
    ``key`` is an old one, else the closest valid names."""
    if key in ALL_RENAMES:
        hint = f"; in Keras 2 and later it is {ALL_RENAMES[key]}="
        if ALL_RENAMES[key] not in valid:
            hint += f" (which {owner} does not take either)"
    else:
        close = difflib.get_close_matches(key, valid, n=3)
        hint = (f"; did you mean {', '.join(map(repr, close))}?" if close else "") + \
            f" Valid arguments: {', '.join(sorted(valid))}"
    return TypeError(f"{owner}: unknown argument {key!r}{hint}")
