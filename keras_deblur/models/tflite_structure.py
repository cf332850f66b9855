"""The indices of a `.tflite` flatbuffer that LiteRT trusts, checked before LiteRT reads them.

LiteRT's flatbuffer verifier checks that a file's offsets stay inside it, not
that the model is whole: a file without a subgraph list segfaults
`Interpreter()`, and a signature naming a subgraph that does not exist
segfaults `get_input_details()` (both found by tests/fuzz/fuzz_load_tflite.py).
`structure_problem` reads the subgraph, tensor, buffer and operator-code
indices with every read checked against the end of the file, so a hostile file
gives a problem to report, never a read outside it or a crash.

The field slots are those of LiteRT's schema.fbs (the `Offset(4 + 2 * slot)`
of ai_edge_litert/schema_py_generated.py).
"""

import struct

# Field slots of the tables read.
_MODEL_OPERATOR_CODES, _MODEL_SUBGRAPHS, _MODEL_BUFFERS, _MODEL_SIGNATURE_DEFS = 1, 2, 4, 7
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS, _SUBGRAPH_OPERATORS = 0, 1, 2, 3
_TENSOR_BUFFER = 2
_OPERATOR_OPCODE_INDEX, _OPERATOR_INPUTS, _OPERATOR_OUTPUTS = 0, 1, 2
_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS, _SIGNATURE_SUBGRAPH_INDEX = 0, 1, 4
_TENSOR_MAP_TENSOR_INDEX = 1
# LiteRT's kTfLiteOptionalTensor: an operator input (or output) left out.
_OPTIONAL_TENSOR = -1


class _OutsideTheFile(Exception):
    """A read that would end past the end of the buffer or start before it."""


_INT32, _UINT32, _UINT16 = struct.Struct("<i"), struct.Struct("<I"), struct.Struct("<H")


def _read(data, layout, position):
    if position < 0:  # struct would count it from the end
        raise _OutsideTheFile
    try:
        return layout.unpack_from(data, position)[0]
    except struct.error:
        raise _OutsideTheFile from None


class _Table:
    """A flatbuffer table whose fields are read by slot, each read bounds-checked."""

    def __init__(self, data, position):
        self._data = data
        self._position = position
        self._vtable = position - _read(data, _INT32, position)
        self._vtable_size = _read(data, _UINT16, self._vtable)

    def _field(self, slot):
        """Where the field in `slot` starts, or None when the table leaves it out."""
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_size:
            return None
        offset = _read(self._data, _UINT16, self._vtable + entry)
        return self._position + offset if offset else None

    def uint32(self, slot):
        field = self._field(slot)
        return 0 if field is None else _read(self._data, _UINT32, field)

    def _vector(self, slot):
        """`(first element, length)` of the vector in `slot`, `(0, 0)` when left out."""
        field = self._field(slot)
        if field is None:
            return 0, 0
        start = field + _read(self._data, _UINT32, field)
        length = _read(self._data, _UINT32, start)
        if start + 4 + 4 * length > len(self._data):  # every element here is 4 bytes
            raise _OutsideTheFile
        return start + 4, length

    def length(self, slot):
        return self._vector(slot)[1]

    def int32s(self, slot):
        start, length = self._vector(slot)
        return struct.unpack_from(f"<{length}i", self._data, start)

    def tables(self, slot):
        start, length = self._vector(slot)
        elements = range(start, start + 4 * length, 4)
        return [_Table(self._data, e + _read(self._data, _UINT32, e)) for e in elements]


def structure_problem(data):
    """What makes a `.tflite` flatbuffer unsafe to hand to LiteRT, or None.

    Args:
        data: bytes. The file's content.

    Returns:
        None, or a str naming the first index found pointing nowhere: a
        missing subgraph list, a signature's subgraph or tensor, a tensor's
        buffer, an operator's code or tensors, a subgraph's inputs/outputs.
        LiteRT checks what this does not (the operators' options, the
        buffers' contents) with its own errors.
    """
    try:
        model = _Table(data, _read(data, _UINT32, 0))
        subgraphs = model.tables(_MODEL_SUBGRAPHS)
        if not subgraphs:
            return "no subgraphs"
        counts = (model.length(_MODEL_BUFFERS), model.length(_MODEL_OPERATOR_CODES))
        tensor_counts = []
        for index, subgraph in enumerate(subgraphs):
            problem = _subgraph_problem(subgraph, *counts)
            if problem:
                return f"subgraph {index}: {problem}"
            tensor_counts.append(subgraph.length(_SUBGRAPH_TENSORS))
        for index, signature in enumerate(model.tables(_MODEL_SIGNATURE_DEFS)):
            problem = _signature_problem(signature, tensor_counts)
            if problem:
                return f"signature {index}: {problem}"
    except _OutsideTheFile:
        return "an offset points outside the file"
    return None


def _subgraph_problem(subgraph, buffer_count, operator_code_count):
    tensors = subgraph.tables(_SUBGRAPH_TENSORS)
    for index, tensor in enumerate(tensors):
        buffer = tensor.uint32(_TENSOR_BUFFER)
        if buffer >= buffer_count:
            return f"tensor {index} names buffer {buffer}, out of range ({buffer_count} buffers)"
    for slot, role in ((_SUBGRAPH_INPUTS, "input"), (_SUBGRAPH_OUTPUTS, "output")):
        problem = _tensor_list_problem(subgraph.int32s(slot), len(tensors))
        if problem:
            return f"{role} {problem}"
    for index, operator in enumerate(subgraph.tables(_SUBGRAPH_OPERATORS)):
        code = operator.uint32(_OPERATOR_OPCODE_INDEX)
        if code >= operator_code_count:
            return (
                f"operator {index} names operator code {code}, out of range "
                f"({operator_code_count} codes)"
            )
        for slot, role in ((_OPERATOR_INPUTS, "input"), (_OPERATOR_OUTPUTS, "output")):
            problem = _tensor_list_problem(operator.int32s(slot), len(tensors))
            if problem:
                return f"operator {index} {role} {problem}"
    return None


def _tensor_list_problem(indices, tensor_count):
    if indices and (min(indices) < _OPTIONAL_TENSOR or max(indices) >= tensor_count):
        bad = next(i for i in indices if not _OPTIONAL_TENSOR <= i < tensor_count)
        return f"tensor {bad}, out of range ({tensor_count} tensors)"
    return None


def _signature_problem(signature, tensor_counts):
    index = signature.uint32(_SIGNATURE_SUBGRAPH_INDEX)
    if index >= len(tensor_counts):
        return f"subgraph {index}, out of range ({len(tensor_counts)} subgraphs)"
    count = tensor_counts[index]
    for slot in (_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS):
        for tensor_map in signature.tables(slot):
            tensor = tensor_map.uint32(_TENSOR_MAP_TENSOR_INDEX)
            if tensor >= count:
                return f"tensor {tensor}, out of range ({count} tensors in subgraph {index})"
    return None
