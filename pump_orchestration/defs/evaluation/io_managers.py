"""IO managers of evaluation: each stores one kind of result with its writer in ``warehouse.results``."""
from pump_orchestration.defs.shared.io_managers import WarehouseWriterIOManager


class TestResultsIOManager(WarehouseWriterIOManager):
    """A test report → one ``ml_test_results`` row."""

    __test__ = False  # not a pytest class, whatever its name

    def write(self, conn, save_model, obj):
        from pump_orchestration.warehouse.results import write_test

        return write_test(conn, save_model, obj)


class ComparisonsIOManager(WarehouseWriterIOManager):
    """A comparison → both models' ``ml_test_results`` rows and the ``ml_comparisons`` row."""

    def write(self, conn, save_model, obj):
        from pump_orchestration.warehouse.results import write_comparison

        return write_comparison(conn, save_model, obj)


class WalkForwardIOManager(WarehouseWriterIOManager):
    """Walk-forward windows → per window a model (artifact + row), its test, and the comparison with the
    previous window's model; a failed transaction deletes the artifacts it wrote."""

    def write(self, conn, save_model, obj):
        from pump_orchestration.warehouse.results import write_walk_forward

        return write_walk_forward(conn, save_model, obj)
