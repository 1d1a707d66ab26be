"""Tables from files: CSV with any delimiter, Parquet, Arrow; text columns as indicators; missing cells; bad files."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import torch

from lit_linreg.data import LinRegDataModule
from tests.conftest import CONFIGS, ROOT, fit, fit_error, read_summary

CSV = ["--config", str(CONFIGS / "csv.yaml")]


def shops(n: int = 240, seed: int = 0) -> pa.Table:
    """Sales explained by price, ads and a region (north, south, west; north is the reference)."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "west"], n)
    price, ads = rng.uniform(5, 15, n), rng.uniform(0, 100, n)
    effect = {"north": 0.0, "south": 12.0, "west": -7.0}
    sales = 200 - 6 * price + 0.8 * ads + np.array([effect[r] for r in region]) + rng.normal(0, 3, n)
    return pa.table({"price": price, "region": region, "ads": ads, "sales": sales})


def write_csv(path, table: pa.Table, delimiter: str = ",") -> str:
    from pyarrow import csv as pa_csv

    pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(delimiter=delimiter))
    return str(path)


def load(**kwargs) -> LinRegDataModule:
    data = LinRegDataModule(**kwargs)
    data.setup("fit")
    return data


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_detected(tmp_path, delimiter):
    path = write_csv(tmp_path / "shops.csv", shops(), delimiter)
    data = load(path=path, target="sales", features=["price", "ads"])
    assert data.feature_names == ["price", "ads"] and data.x.dtype == torch.float64
    assert torch.allclose(data.y, torch.tensor(shops().column("sales").to_numpy()))


def test_parquet_arrow_and_csv_give_the_same_rows(tmp_path):
    table = shops()
    pq.write_table(table, tmp_path / "shops.parquet")
    feather.write_feather(table, tmp_path / "shops.arrow")
    write_csv(tmp_path / "shops.csv", table)
    loaded = [load(path=str(tmp_path / f"shops.{ext}"), target="sales") for ext in ("parquet", "arrow", "csv")]
    for data in loaded[1:]:
        assert data.feature_names == loaded[0].feature_names
        assert torch.allclose(data.x, loaded[0].x, rtol=1e-12) and torch.allclose(data.y, loaded[0].y, rtol=1e-12)


def test_text_column_becomes_indicators_with_the_first_level_as_reference(tmp_path):
    path = write_csv(tmp_path / "shops.csv", shops())
    data = load(path=path, target="sales")
    assert data.feature_names == ["price", "region=south", "region=west", "ads"]
    regions = shops().column("region").to_pylist()
    assert data.x[:, 1].tolist() == [float(r == "south") for r in regions]
    assert data.hparams.categorical == {"region": ["north", "south", "west"]}  # in the checkpoint


def test_indicator_weights_equal_a_fit_of_the_same_table_one_hot_encoded_by_hand(tmp_path):
    table = shops()
    path = write_csv(tmp_path / "shops.csv", table)
    region = np.array(table.column("region").to_pylist())
    by_hand = pa.table(
        {
            "price": table.column("price"),
            "region=south": (region == "south").astype(float),
            "region=west": (region == "west").astype(float),
            "ads": table.column("ads"),
            "sales": table.column("sales"),
        }
    )
    hand = write_csv(tmp_path / "by_hand.csv", by_hand)
    short = ["--data.target", "sales", "--trainer.max_epochs", "2"]  # the same steps either way: no need to converge
    a = read_summary(fit(tmp_path / "a", *CSV, "--data.path", path, *short))
    b = read_summary(fit(tmp_path / "b", *CSV, "--data.path", hand, *short))
    assert a["feature_names"] == b["feature_names"]
    np.testing.assert_allclose(a["optimum"]["w"], b["optimum"]["w"], rtol=1e-9)
    np.testing.assert_allclose(a["learned"]["w"], b["learned"]["w"], rtol=1e-5)
    ols = sm.OLS(by_hand.column("sales").to_numpy(), sm.add_constant(np.c_[[by_hand.column(i) for i in range(4)]].T))
    np.testing.assert_allclose(a["optimum"]["w"], ols.fit().params[1:], rtol=1e-8)


def test_numbers_named_categorical_are_categories(tmp_path):
    table = shops().append_column("store", pa.array(np.arange(240) % 3 + 1))
    path = write_csv(tmp_path / "shops.csv", table)
    data = load(path=path, target="sales", categorical="store")  # one name, no brackets
    assert "store=2" in data.feature_names and "store=3" in data.feature_names and "store" not in data.feature_names


def test_numeric_codes_sort_by_value_as_r_factor_does(tmp_path):
    """Codes 8, 9, 10: the reference is 8 and the indicators come 9, 10 (as text, "10" would sort first)."""
    import statsmodels.formula.api as smf

    table = shops().append_column("store", pa.array(np.arange(240) % 3 + 8))
    path = write_csv(tmp_path / "shops.csv", table)
    summary = read_summary(fit(tmp_path / "run", *CSV, "--data.path", path, "--data.target", "sales",
                               "--data.categorical", "store", "--trainer.max_epochs", "1"))  # fmt: skip
    assert summary["feature_names"][-2:] == ["store=9", "store=10"] and summary["reference_levels"]["store"] == "8"
    frame = table.to_pandas()
    formula = "sales ~ " + " + ".join(c for c in frame.columns if c not in ("sales", "store")) + " + C(store)"
    ols = smf.ols(formula, frame).fit()
    assert [name for name in ols.params.index if "store" in name] == ["C(store)[T.9]", "C(store)[T.10]"]
    np.testing.assert_allclose(summary["optimum"]["w"][-2:], ols.params[["C(store)[T.9]", "C(store)[T.10]"]], rtol=1e-8)


def test_missing_cells_are_listed_in_one_line_or_dropped_and_counted(tmp_path):
    rows = ["price,ads,sales", "1,2,3", "4,,6", "7,8,", "9,10,11", "12,,14", "15,16,17"]
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join(rows) + "\n")
    message = fit_error(tmp_path / "run", "--data.path", str(path), "--data.target", "sales")
    assert "3 missing cells ('ads' 2, 'sales' 1; lines 3, 4, 6)" in message and "--data.missing drop" in message
    data = load(path=str(path), target="sales", missing="drop")
    assert len(data.x) == 3 and data.y.tolist() == [3.0, 11.0, 17.0]
    assert data.notes == [f"dropped 3 of 6 rows of {path} with missing cells ('ads' 2, 'sales' 1)"]


@pytest.mark.parametrize(
    ("content", "name", "args", "expected"),
    [
        (None, "t.csv", [], "no such file"),
        ("", "t.csv", [], "is empty"),
        ("a,b,y\n", "t.csv", [], "has a header but no rows"),
        ("a,b,y\n1,2,3\n", "t.csv", ["--data.target", "z"], "--data.target 'z' is not a column"),
        ("a,b,y\n1,2,3\n", "t.csv", ["--data.features", "[a, c]"], "'c', which is not a column"),
        ("a,b,y\n1,2,3\n4,x,6\n5,6,7\n", "t.csv", [], "line 3, column 'b': 'x' is not a number"),
        ("a,b,y\n1,2,3\n4,inf,6\n", "t.csv", [], "line 3, column 'b': 'inf' is not a finite number"),
        ("a,b,y\n1,2,3\n4,5\n", "t.csv", [], "Expected 3 columns, got 2"),
        ("a,a,y\n1,2,3\n", "t.csv", [], "names 'a' more than once"),
        ("a,b,y\n1,,3\n4,,6\n", "t.csv", [], "column 'b' of"),
        ("a,b,y\n1,n,3\n4,n,6\n", "t.csv", [], "has a single level ('n')"),
        ("not parquet at all", "t.parquet", [], "is not a readable parquet file"),
    ],
)
def test_bad_files_get_one_line_and_nothing_is_written(tmp_path, content, name, args, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    message = fit_error(tmp_path / "run", "--data.path", str(path), "--data.target", "y", *args)
    assert expected in message, message
    assert not list((tmp_path / "run").glob("**/last.ckpt"))  # nothing trained, nothing written


def test_the_shipped_typo_example_stops_at_its_cell(tmp_path):
    """examples/typo.csv is the README's example of bad input: its error must stay the one the README shows."""
    message = fit_error(tmp_path, "--data.path", str(ROOT / "examples" / "typo.csv"), "--data.target", "progression")
    assert message.endswith(
        "line 3, column 'bmi': '2l.6' is not a number (name the column in --data.categorical if it is a category)"
    )
    assert not list(tmp_path.glob("**/last.ckpt"))


def test_an_identifier_column_is_not_a_category(tmp_path):
    table = shops().append_column("customer", pa.array([f"c{i}" for i in range(240)]))
    message = fit_error(tmp_path / "run", "--data.path", write_csv(tmp_path / "t.csv", table), "--data.target", "sales")
    assert "'customer'" in message and "240 distinct text values" in message


def test_summary_names_the_reference_level(tmp_path):
    path = write_csv(tmp_path / "shops.csv", shops())
    cli = fit(tmp_path, *CSV, "--data.path", path, "--data.target", "sales", "--report.optimum", "false",
              "--trainer.max_epochs", "1")  # fmt: skip
    summary = json.loads((tmp_path / "lightning_logs" / "version_0" / "summary.json").read_text())
    assert summary["reference_levels"] == {"region": "north"}
    assert cli.model.feature_names == ["price", "region=south", "region=west", "ads"]
