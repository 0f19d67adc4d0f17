"""I-ASIDE: frequency bands, coalition images, coalition values, Shapley values over bands, scores and the engine."""
