"""The demo-corpus recipe, one module per part; run scripts/build_demo_corpus.py."""
