"""models: the ST-GCN network (:mod:`~stgcn.models.stgcn`), its config (:mod:`~stgcn.models.config`), the
literal original structure used as the correctness oracle (:mod:`~stgcn.models.reference`) and the map to the
original's parameter names (:mod:`~stgcn.models.original_keys`)."""
