"""Pickles that every worker can load, whatever its numpy (``--backend-python``)."""

from __future__ import annotations

import io
import pickle


class PortablePickler(pickle.Pickler):
    """Pickles numpy arrays and scalars as raw bytes, dtype name and shape: a worker under
    another Python environment (``--backend-python``), whose numpy may be another major
    version, cannot load numpy's own pickles (numpy 2 names ``numpy._core``)."""

    def reducer_override(self, obj):
        import numpy as np

        if type(obj) is np.ndarray and obj.dtype != object:
            return rebuild_array, (obj.tobytes(), obj.dtype.name, obj.shape)
        if isinstance(obj, np.generic) and not isinstance(obj, np.object_):
            return rebuild_array, (obj.tobytes(), obj.dtype.name, None)
        return NotImplemented


def dumps(value: object) -> bytes:
    """``value`` pickled so that any worker can load it (:class:`PortablePickler`)."""
    buffer = io.BytesIO()
    PortablePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def rebuild_array(data: bytes, dtype_name: str, shape: tuple[int, ...] | None):
    """The array (a scalar where ``shape`` is None) that :class:`PortablePickler` took apart."""
    import numpy as np

    try:
        dtype = np.dtype(dtype_name)
    except TypeError:  # bfloat16 and the other ml_dtypes types
        import ml_dtypes

        dtype = np.dtype(getattr(ml_dtypes, dtype_name))
    flat = np.frombuffer(data, dtype=dtype)
    return flat[0] if shape is None else flat.reshape(shape).copy()
