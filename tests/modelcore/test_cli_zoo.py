from typer.testing import CliRunner

from cli.zoo import app
from modelcore.zoo import DEFAULT_ZOO


def test_zoo_build_with_shipped_weights_trains_nothing() -> None:
    result = CliRunner().invoke(app, ["build"])
    assert result.exit_code == 0, result.output
    for spec in DEFAULT_ZOO:
        assert f"{spec.name}: cached" in result.output
    assert "zoo ready in" in result.output
