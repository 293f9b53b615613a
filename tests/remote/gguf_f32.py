"""Write a GGUF file with every tensor dequantized to float32 (the ``gguf`` package only).

The bundled model is a Q4_1 GGUF. The local engine dequantizes it to float32 when it loads;
llama.cpp instead runs its 4-bit kernels, whose log-probabilities differ from ours by up to
0.4. Served from an all-float32 copy (same metadata, same tensors, exact dequantized
values) with ``-fa off -ctk f32 -ctv f32``, llama.cpp and transformers compute the same
function, so the remote tests can compare numbers tightly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Keys the writer produces itself; copying them would duplicate them.
_WRITER_OWNED = {"general.architecture", "general.file_type"}
_ALL_F32 = 0  # llama_ftype LLAMA_FTYPE_ALL_F32


def write_f32_copy(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` with float32 tensors; returns ``target`` (atomic)."""
    import gguf

    reader = gguf.GGUFReader(str(source))
    arch = reader.fields["general.architecture"].contents()
    partial = target.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in _WRITER_OWNED:
            continue
        main_type = field.types[0]
        sub_type = field.types[-1] if main_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), main_type, sub_type=sub_type)
    writer.add_file_type(_ALL_F32)
    for tensor in reader.tensors:
        # numpy order (reversed GGUF dims); quantized blocks become their float values
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, np.ascontiguousarray(values))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(target)
    return target
