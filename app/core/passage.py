"""A retrieved piece of a document: what the pipeline cites, checks and logs."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Passage:
    id: str  # the chunk's content-hash id in the store
    text: str
    file: str  # relative to the docs folder it was ingested from
    heading: str  # heading path, " > "-joined ("Pricing > Team plan")
    score: float  # cosine similarity to the question, 0..1 (higher is closer)
    root: str = ""  # absolute docs folder the file belongs to
    start: int = 0  # character offsets into the file's extracted text
    end: int = 0

    def to_json(self) -> dict:
        return {"id": self.id, "file": self.file, "heading": self.heading, "score": round(self.score, 4), "text": self.text}

    def as_dict(self) -> dict:
        return asdict(self)
