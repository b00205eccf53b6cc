"""The model's tokenizer, read from its folder with the `tokenizers` library alone.

Answering with an ONNX engine needs token ids and onnxruntime, nothing more; loading transformers
for its tokenizer would cost every start seconds (transformers imports torch). A folder's
`tokenizer.json` holds the whole pipeline transformers' fast tokenizer runs (normaliser,
pre-tokenizer, WordPiece, the [CLS] ... [SEP] template), so the ids are the same; the tests
check that they are.
"""

from pathlib import Path

from .errors import EmotionCoreError
from .model_folder import TOKENIZER, read_json

SPECIAL_TOKENS = "special_tokens_map.json"  # older tokenizers name [PAD] and [MASK] here


class FolderTokenizer:
    """Token ids for texts, or for texts already split into words; its settings never change after loading, so
    request threads may share it (a truncation setting would be shared state: the classifier cuts ids itself)."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        path = folder / TOKENIZER[0]
        if not path.is_file():
            raise EmotionCoreError(f"Model folder {folder} has no {TOKENIZER[0]} (save the tokenizer with the model).")
        try:
            self.backend = Tokenizer.from_file(str(path))
        except Exception as exc:  # a damaged file: one line naming it
            raise EmotionCoreError(f"Model folder {folder}: {path.name} could not be read ({exc}).") from None
        self.backend.no_truncation()
        self.backend.no_padding()
        # transformers reads the special tokens from either file; tokenizer_config.json wins
        settings = read_json(folder / SPECIAL_TOKENS, missing_ok=True) | read_json(folder / TOKENIZER[1], missing_ok=True)
        self.model_max_length: int | None = settings.get("model_max_length")
        self.pad_token_id = self.special_id(settings.get("pad_token")) or 0
        self.mask_token_id = self.special_id(settings.get("mask_token"))
        self.special_tokens = self.backend.num_special_tokens_to_add(False)

    def special_id(self, token) -> int | None:
        """The id of a special token named in tokenizer_config.json (a string, or transformers' {"content": ...})."""
        if isinstance(token, dict):
            token = token.get("content")
        return self.backend.token_to_id(token) if isinstance(token, str) else None

    def ids(self, texts: list[str], special_tokens: bool = True) -> list[list[int]]:
        """Each text's token ids, whole (never truncated)."""
        return [row.ids for row in self.backend.encode_batch(texts, add_special_tokens=special_tokens)]

    def words(self, words: list[str]) -> tuple[list[int], list[int | None]]:
        """The token ids of a text given as words, and the word each token came from (None for special tokens)."""
        encoded = self.backend.encode(words, is_pretokenized=True)
        return encoded.ids, encoded.word_ids

    def tokenize(self, text: str) -> list[str]:
        """The text's tokens as strings, without special tokens."""
        return self.backend.encode(text, add_special_tokens=False).tokens

    def closing_tokens(self) -> int:
        """How many special tokens follow a text ([SEP]: 1)."""
        plain, full = self.ids(["x"], special_tokens=False)[0], self.ids(["x"])[0]
        return len(full) - len(plain) - full.index(plain[0])
