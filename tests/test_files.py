"""Files as people hand them over: other encodings, compression, pandas' categories, nested and date columns,
numbers written for people, numbers too big for float64. Each either works or is refused in one line."""

import bz2
import gzip
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from lit_linreg.data import LinRegDataModule
from lit_linreg.errors import UsageError
from tests.conftest import fit_error
from tests.test_table import shops, write_csv


def load(**kwargs) -> LinRegDataModule:
    data = LinRegDataModule(**kwargs)
    data.setup("fit")
    return data


def refused(**kwargs) -> str:
    """The one-line message a data module built with these arguments refuses them with."""
    with pytest.raises(UsageError) as error:
        load(**kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


def latin1_shops(tmp_path, header: str) -> str:
    """shops() as an Excel export in Latin-1 would be: 'é' in the header or in a cell."""
    table = shops(40)
    text = write_csv(tmp_path / "utf8.csv", table)
    content = open(text, encoding="utf-8").read().replace("price", header).replace("south", "süd")
    path = tmp_path / "latin1.csv"
    path.write_bytes(content.encode("latin-1"))
    return str(path)


def test_a_latin1_file_is_refused_naming_the_option_and_read_with_it(tmp_path):
    path = latin1_shops(tmp_path, "prix_café")
    assert "--data.encoding latin-1" in refused(path=path, target="sales")
    data = load(path=path, target="sales", encoding="latin-1")
    assert data.feature_names == ["prix_café", "region=süd", "region=west", "ads"]
    assert torch.equal(data.x[:, 0], torch.tensor(shops(40).column("price").to_numpy()))


def test_a_latin1_cell_under_a_utf8_header_is_refused_naming_the_option(tmp_path):
    assert "--data.encoding latin-1" in refused(path=latin1_shops(tmp_path, "price"), target="sales")


def test_an_unknown_encoding_is_refused(tmp_path):
    assert "--data.encoding 'klingon'" in refused(path="x.csv", target="y", encoding="klingon")


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open)])
def test_a_compressed_csv_reads_as_the_plain_one(tmp_path, suffix, opener):
    plain = write_csv(tmp_path / "shops.csv", shops())
    packed = tmp_path / f"shops.csv{suffix}"
    with open(plain, "rb") as source, opener(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    a, b = load(path=plain, target="sales"), load(path=str(packed), target="sales")
    assert a.feature_names == b.feature_names and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_pandas_categories_and_booleans_in_parquet_become_indicators(tmp_path):
    table = shops()
    region = table.column("region").combine_chunks().dictionary_encode()  # how pandas saves a category column
    promo = pa.array(np.arange(table.num_rows) % 2 == 0)
    pq.write_table(table.set_column(1, "region", region).append_column("promo", promo), tmp_path / "d.parquet")
    pq.write_table(table.append_column("promo", pa.array(np.where(promo, "true", "false"))), tmp_path / "t.parquet")
    encoded, text = (load(path=str(tmp_path / f"{n}.parquet"), target="sales") for n in ("d", "t"))
    assert encoded.feature_names == text.feature_names == ["price", "region=south", "region=west", "ads", "promo=true"]
    assert torch.equal(encoded.x, text.x)


def test_nested_and_date_columns_are_refused_naming_them(tmp_path):
    table = shops(20)
    nested = table.append_column("tags", pa.array([[1, 2]] * 20))
    pq.write_table(nested, tmp_path / "nested.parquet")
    assert "column 'tags'" in refused(path=str(tmp_path / "nested.parquet"), target="sales")
    lines = ["day,x,y", *(f"2024-01-{d:02d},{d % 3},{d}" for d in range(1, 21))]
    (tmp_path / "dates.csv").write_text("\n".join(lines) + "\n")
    message = refused(path=str(tmp_path / "dates.csv"), target="y")
    assert "column 'day'" in message and "dates" in message


def test_numbers_with_thousands_separators_are_refused_not_made_categories(tmp_path):
    lines = ["sales,x", *(f'"{1000 + 7 * i:,}",{i % 4}' for i in range(40))]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    message = refused(path=str(tmp_path / "t.csv"), target="x")
    assert "column 'sales'" in message and "thousands separators ('1,000')" in message


def test_integers_float64_cannot_hold_are_refused(tmp_path):
    big = pa.array(2**53 + 1 + 2 * np.arange(40, dtype=np.int64))  # 2**53 + 1 itself is 2**53 as a float
    pq.write_table(pa.table({"id": big, "y": np.arange(40.0)}), tmp_path / "t.parquet")
    message = refused(path=str(tmp_path / "t.parquet"), target="y")
    assert "line 2, column 'id'" in message and "9007199254740993 is beyond 2**53" in message


def test_a_cell_too_big_for_sums_of_squares_is_refused_before_any_solver(tmp_path):
    lines = ["x,y", *(f"{i},{i % 5}" for i in range(30)), "1e308,2"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    message = fit_error(tmp_path, "--data.path", str(tmp_path / "t.csv"), "--data.target", "y")
    assert message == f"error: {tmp_path / 't.csv'} line 32, column 'x': '1e+308' is beyond 1e+100 in size: the " \
        "sums of squares a fit needs would overflow; rescale it"  # fmt: skip
    assert not (tmp_path / "lightning_logs").exists()


def test_a_column_named_like_an_indicator_is_refused(tmp_path):
    table = pa.table({"cat": ["a", "b"] * 10, "cat=b": np.arange(20.0), "y": np.arange(20.0) % 3})
    pq.write_table(table, tmp_path / "t.parquet")
    assert "'cat=b' would stand for two weights" in refused(path=str(tmp_path / "t.parquet"), target="y")


def test_a_feature_named_twice_is_refused(tmp_path):
    path = write_csv(tmp_path / "shops.csv", shops())
    assert "--data.features names 'ads' more than once" in refused(path=path, target="sales", features=["ads", "ads"])
