"""The dual-codebook audio tokenizer (design §1.1): linguistic 16.67 Hz / 1,024 + semantic 25 Hz / 4,096."""

from aqaa.tokenizer.dual import DualCodebookTokenizer, TokenizerConfig, TokenizerStream, Tokens

__all__ = ["DualCodebookTokenizer", "TokenizerConfig", "TokenizerStream", "Tokens"]
