"""One rank of the torchrun test in test_distributed_training.py (run by torchrun).

Usage: torchrun --nproc_per_node=2 ddp_train_worker.py JSON, JSON a list of argument
lists for ``crossmodal`` (e.g. ``[["train", "--out", …], …]``). The process group is
joined once, here, so that several runs share one launch (the trainer then leaves the
group to its creator); each run goes through the command line as under
``torchrun -m crossmodal``.
"""

from __future__ import annotations

import json
import sys

import torch.distributed as dist

from crossmodal.apps.cli import main

if __name__ == "__main__":
    dist.init_process_group("gloo")
    for argv in json.loads(sys.argv[1]):
        code = main(argv)
        if code:
            sys.exit(code)
        # Rank 0 still writes the run's model and report after training; leaving the
        # group before it is done aborts gloo (seen under load as "terminate called").
        dist.barrier()
    dist.destroy_process_group()
