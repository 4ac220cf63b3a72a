"""The language model: vocabulary, conversation format, backbone, data and decoding."""
