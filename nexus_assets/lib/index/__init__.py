"""Index: from page text to a searchable Chroma collection.

Chunking (`chunking`), the embedding back ends behind one interface (`embedding`: the local model and
its compute engines in `embedding_engines` / `bert_encoder`; Amazon Titan in `bedrock_embedding`),
Chroma collections built aside and swapped in atomically (`chroma_store`), BM25 and rank fusion
(`lexical`), dense/lexical/hybrid search (`search`) and retrieval quality against golden questions
(`retrieval_eval`).
"""
