"""The real-time app (``python -m handkp live``; its command line is ``handkp.app.cli``).

Modules: ``errors`` (exit codes, ``LiveError``), ``sources`` (camera, file, stream, folder),
``capture`` (the capture thread), ``overlay`` (skeleton, score bars, HUD, tracked hands),
``outputs`` (window, video, JSON lines), ``tracking`` (several hands: options, the pipeline of
``handkp.track``), ``loop`` (``run_live``, ``LiveOptions``, ``Summary``) and
``cli``. Nothing here imports torch, polars or dvc."""
