"""The training and sampling application built on the gddm_kernels ops: image, gradient-domain
and Laplacian-domain diffusion models, trained and sampled from the command line
(`python -m gddm_kernels train|sample|export`, gddm_kernels.app.cli) or from Python.

    config       TrainConfig, the choices of a run
    objective    the networks' predictions and the loss per domain and process
    loop         train(config): the training loop, EMA
    distributed  ranks under torchrun, per-rank generators
    checkpoints  save, load and resume
    sample       the reverse process and the reconstruction of images
    export       a --model diffusers checkpoint as a diffusers GradientDomainPipeline folder
    models/      UNet, UNet2DAdapter (diffusers' UNet2DModel), PoissonNet
    data         small bundled datasets;  images: PNG grids
    cli          the command line

Needs the `train` extra (tqdm, pillow, scikit-learn, scikit-image):
`pip install --no-build-isolation -e ".[train]"`; `--model diffusers` and `export` also need the
`diffusers` extra (imported only then). The kernel library (`import gddm_kernels`)
never imports this package.
"""
