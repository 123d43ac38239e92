"""The fitted model's IO manager: its artifact in the model store plus its ``ml_models`` row, all or nothing."""
from pump_orchestration.defs.shared.io_managers import WarehouseWriterIOManager


class MlModelsIOManager(WarehouseWriterIOManager):
    """Writes the artifact first and its SHA-256 into the row; if the row cannot be written (e.g. the
    name was taken meanwhile) the artifact is deleted, so a failed run leaves no row and no orphan file."""

    def write(self, conn, save_model, obj):
        from pump_orchestration.warehouse.results import write_model

        return write_model(conn, save_model, obj)
