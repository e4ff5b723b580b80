// A minimal SentencePiece vocabulary as GGUF metadata, so tests can write self-contained GGUF models
// (the same synthetic vocabulary the benchmark models use).

export { syntheticVocab as tinySpmVocab } from '../../bench/models.js';
