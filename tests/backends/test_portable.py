"""Pickles a worker under another numpy can load (--backend-python): no reference to numpy's
own modules, and every value comes back equal with its dtype and shape."""

from __future__ import annotations

import pickle

import ml_dtypes
import numpy as np
import pytest

from fuzzer.execution.portable import dumps

VALUES = {
    "float32": np.arange(6, dtype=np.float32).reshape(2, 3),
    "bfloat16": np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16),
    "empty": np.zeros((0, 3), np.int64),
    "bool 0-d": np.array(True),
    "float16 scalar": np.float16(2.5),
    "int8 scalar": np.int8(-3),
}


@pytest.mark.parametrize("name", VALUES)
def test_numpy_values_come_back_equal(name):
    value = VALUES[name]
    back = pickle.loads(dumps({"x": value}))["x"]
    assert type(back) is type(value) and back.dtype == value.dtype and np.shape(back) == np.shape(value)
    assert np.array_equal(np.asarray(back, np.float64), np.asarray(value, np.float64))


def test_the_payload_names_no_numpy_module():
    payload = dumps(list(VALUES.values()))
    assert b"numpy" not in payload and b"ml_dtypes" not in payload
