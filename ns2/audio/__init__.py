"""Signal helpers with no corpus or model knowledge: the codec frame grid and F0 on it.

Used by the preparation stages (:mod:`ns2.data`), the codec's explicit pitch input
(:mod:`ns2.codec.harmonic`) and the studies (:mod:`ns2.eval.studies`) alike.
"""
