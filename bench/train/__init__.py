"""Training SemantiCodec from the user's own audio.

* `features.py`: frozen AudioMAE features of any task's audio, stacked exactly as the SemantiCodec encoder
  stacks them before its codebook lookup, streamed to a per-item cache on disk.
* `codebook.py`: k-means (faiss) over those features -> the semantic codebook `[V, F]` float32, written in
  the official layout (`codebook_idx/combine_{512/K}_audioset_dominate/codebook_{V/2}_0.npy`).
* `cli.py`: `bench train semanticodec STAGE ...` (one sub-command per stage).

Nothing heavy is imported here: `bench --help` must not import torch or faiss.
"""
