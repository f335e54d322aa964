from setuptools import find_packages, setup

setup(
    name="multilabel_keras",
    version="0.1.0",
    description="Multi-label image classification with Keras 3 and transfer learning",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["multilabel_keras", "multilabel_keras.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.15,<4",
        "tensorflow-cpu>=2.21,<2.22; platform_machine=='x86_64' or platform_machine=='AMD64'",
        "tensorflow>=2.21,<2.22; platform_machine!='x86_64' and platform_machine!='AMD64'",
        "scikit-learn>=1.9,<1.10",
        "opencv-python-headless>=5.0,<5.1",
        "matplotlib>=3.11,<3.12",
        "scipy>=1.11",  # reads MIML .mat files (scikit-learn needs it too)
        "numpy>=1.26",
    ],
    extras_require={
        # export --format onnx: tf2onnx converts, onnxruntime runs the file (and the tests)
        "export": ["tf2onnx>=1.17", "onnx>=1.17", "onnxruntime>=1.20"],
        # the notebooks in notebooks/ and the test that runs them
        "notebooks": ["jupyter-core>=5", "nbformat>=5.10", "nbclient>=0.10", "ipykernel>=6.29"],
        # KERAS_BACKEND=jax or torch (TensorFlow stays: tf.data feeds every backend). torch is
        # pinned: an unpinned torch on Linux pulls its CUDA build, several GB.
        "backends": ["jax>=0.4.30", "jaxlib>=0.4.30", "torch==2.13.0"],
        # --tensorboard / keras.callbacks.TensorBoard: Keras writes through TensorBoard's summary ops
        "tracking": ["tensorboard>=2.20"],
        # the documentation site (mkdocs.yml): mkdocs build --strict, mkdocs serve
        "docs": ["mkdocs>=1.6,<2", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"],
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6", "tensorboard>=2.20",
                "mkdocs>=1.6,<2", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26",
                "tf2onnx>=1.17", "onnx>=1.17", "onnxruntime>=1.20",
                "nbformat>=5.10", "nbclient>=0.10", "ipykernel>=6.29"],
    },
    entry_points={"console_scripts": ["multilabel-keras=multilabel_keras.cli:main"]},
)
