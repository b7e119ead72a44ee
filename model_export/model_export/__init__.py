"""Model pipeline for the tfserving-stack: train, export, verify and publish SavedModels.

One module per job: `dataset` (load_digits split, PNG encoding), `training` (the Keras classifier),
`signatures` (the serving graphs), `warmup` (TF Serving warmup records), `verification` (reload and
compare before publishing), `publication` (versioning, staging directory, atomic rename), `model_file`
(cheap checks and loading of .keras files) and `cli` (argument parsing and one-line errors).

TensorFlow is imported lazily inside functions, so that bad command-line input is rejected in a
fraction of a second with a clean one-line error instead of after TensorFlow's start-up log noise.
"""
