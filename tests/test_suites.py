"""bench.suites: the shape-spec parser on good and bad specs, and the named suites."""
import pytest

import kernels
from bench import suites
from bench.suites import Case, get_suite, parse_spec, sweep_axes

# --------------------------------------------------------------------------------------
# the spec parser
# --------------------------------------------------------------------------------------

GOOD = [
    ("8,128,28,28:128,3,3:stride=1,padding=1",
     (8, 128, 28, 28), (128, 128, 3, 3), dict(stride=1, padding=1)),
    ("4,8,2048:16,33:padding=same", (4, 8, 2048), (16, 8, 33), dict(padding="same")),
    ("2,16,8,32,32:32,3,3,3:padding=1,stride=2",
     (2, 16, 8, 32, 32), (32, 16, 3, 3, 3), dict(padding=1, stride=2)),
    ("1,64,56,56:64,3,3:padding=1:groups=64",
     (1, 64, 56, 56), (64, 1, 3, 3), dict(padding=1, groups=64)),
    ("1,64,56,56:128,2,3,3:groups=32,padding=valid",
     (1, 64, 56, 56), (128, 2, 3, 3), dict(groups=32, padding="valid")),
    ("2,3,32,40:8,3,5:stride=1,2,dilation=2,1,padding=2,4",
     (2, 3, 32, 40), (8, 3, 3, 5), dict(stride=(1, 2), dilation=(2, 1), padding=(2, 4))),
    (" 1, 1, 100 : 4, 9 : padding = SAME ", (1, 1, 100), (4, 1, 9), dict(padding="same")),
    ("1,2,10:3,4", (1, 2, 10), (3, 2, 4), {}),
]


@pytest.mark.parametrize("spec, x, w, opts", GOOD, ids=[g[0] for g in GOOD])
def test_parse_good_specs(spec, x, w, opts):
    case = parse_spec(spec)
    assert case.x_shape == x and case.w_shape == w
    for k in ("stride", "padding", "dilation", "groups"):
        assert getattr(case, k) == opts.get(k, Case.__dataclass_fields__[k].default), k
    # the canonical spec parses back to the same problem
    again = parse_spec(case.spec())
    assert (again.x_shape, again.w_shape, again.params()) == \
        (case.x_shape, case.w_shape, case.params())


def test_parse_names_and_params():
    case = parse_spec("8,128,28,28:128,3,3:stride=1,padding=1", name="mine")
    assert case.name == "mine"
    assert parse_spec("1,2,10:3,4").name == "1,2,10:3,4"
    p = case.params()
    assert p.padding == ((1, 1), (1, 1)) and p.stride == (1, 1)
    assert case.out_shape == (8, 128, 28, 28)
    assert case.flops == kernels.conv_flops((8, 128, 28, 28), (128, 128, 3, 3), padding=1)


BAD = [
    ("", "expected X:W"),
    ("8,128,28,28", "expected X:W"),
    ("8,128,28,28:", "expected X:W"),
    ("8,x,28,28:128,3,3", "X (N,C,spatial...) must be comma-separated ints"),
    ("8,128:128,3,3", "1-3 spatial sizes"),
    ("1,2,3,4,5,6:1,1,1,1,1", "1-3 spatial sizes"),
    ("8,0,28,28:128,3,3", "sizes must be >= 1"),
    ("8,128,28,28:128,3", "W must be C_out plus 2 kernel sizes"),
    ("8,128,28,28:128,3,3:stride=0", "stride must be >= 1"),
    ("8,128,28,28:128,3,3:padding=full", "padding must be an int"),
    ("8,128,28,28:128,3,3:padding=-1", "padding must be >= 0"),
    ("8,128,28,28:128,3,3:strides=2", "unknown option 'strides'"),
    ("8,128,28,28:128,3,3:stride=1,2,3", "stride must have 1 or 2 entries"),
    ("8,128,28,28:128,3,3:stride=1:stride=2", "given twice"),
    ("8,128,28,28:128,3,3:groups=3", "groups=3 must divide the 128 input channels"),
    ("8,128,28,28:100,3,3:groups=8", "must divide the output channels"),
    ("8,128,28,28:128,3,3:groups=2,4", "groups must be one int"),
    ("8,128,28,28:128,64,3,3", "channel mismatch"),
    ("1,1,4,4:1,9,9", "output would be empty"),
    ("8,128,28,28:128,3,3:1", "expected key=value"),
    ("8,128,28,28:128,3,3:stride=", "stride must be an int"),
    ("8,128,28,28:128,3,3:,", "empty option"),
]


@pytest.mark.parametrize("spec, fragment", BAD, ids=[b[0] or "empty" for b in BAD])
def test_parse_bad_specs(spec, fragment):
    with pytest.raises(ValueError) as info:
        parse_spec(spec)
    msg = str(info.value)
    assert fragment in msg
    assert msg.startswith("bad shape spec") and "\n" not in msg


def test_parse_rejects_non_strings():
    with pytest.raises(ValueError, match="expected a string"):
        parse_spec(("8", "128"))


# --------------------------------------------------------------------------------------
# suites
# --------------------------------------------------------------------------------------

REQUIRED = ("quick", "default", "3x3", "large-kernels", "1d", "3d", "strided", "depthwise",
            "mnist", "sweep", "kinds")


def test_required_suites_exist():
    assert set(REQUIRED) <= set(suites.SUITE_NAMES)
    assert suites.suite_names() == suites.SUITE_NAMES
    with pytest.raises(ValueError, match="unknown suite 'nope'; valid suites: quick"):
        get_suite("nope")


@pytest.mark.parametrize("name", suites.SUITE_NAMES)
def test_suite_entries_are_valid_and_uniquely_named(name):
    cases = get_suite(name)
    assert cases
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), f"duplicate names in suite {name}"
    for c in cases:
        assert c.name and " " not in c.name and c.name.lower() == c.name
        p = kernels.conv_params(c.x_shape, c.w_shape, **c.conv_kwargs())
        assert p == c.params()
        assert c.flops > 0
        assert parse_spec(c.spec()).params() == p


def test_a_name_means_one_shape_across_suites():
    seen = {}
    for name in suites.SUITE_NAMES:
        for c in get_suite(name):
            key = (c.x_shape, c.w_shape, c.params())
            assert seen.setdefault(c.name, key) == key, f"{c.name} differs between suites"


def test_families_hold_what_they_say():
    assert all(c.ndim == 1 for c in get_suite("1d"))
    assert all(c.ndim == 3 for c in get_suite("3d"))
    assert all(c.params().groups > 1 for c in get_suite("depthwise"))
    assert all(max(c.params().stride) > 1 for c in get_suite("strided"))
    assert all(c.w_shape[2:] == (3, 3) for c in get_suite("3x3"))
    large = get_suite("large-kernels")
    assert all(min(c.w_shape[2:]) >= 7 for c in large)
    assert any(c.x_shape[1:] == (1, 512, 512) and c.w_shape[2:] == (31, 31) for c in large)
    assert any(c.x_shape[1] == 1 for c in large)


def test_kinds_covers_the_kinds_it_names():
    # issue 11's list: 5x5 with 64-192 channels, dilated 3x3, 3-D 3x3x3 16 -> 32, strided
    # 1x1, depthwise, AlexNet / VGG / U-Net-like layers, 1-D spectra
    kinds = get_suite("kinds")
    assert any(c.w_shape[2:] == (5, 5) and c.w_shape[1] >= 64 and c.w_shape[0] >= 192
               for c in kinds)
    assert any(c.w_shape[2:] == (3, 3) and max(c.params().dilation) > 1 for c in kinds)
    assert any(c.w_shape[1:] == (16, 3, 3, 3) and c.w_shape[0] == 32 for c in kinds)
    assert any(c.w_shape[2:] == (1, 1) and max(c.params().stride) > 1 for c in kinds)
    assert any(c.params().groups == c.x_shape[1] > 1 for c in kinds)
    for family in ("alexnet", "vgg", "unet", "spectrum"):
        assert any(c.name.startswith(family) for c in kinds), family
    assert any(c.ndim == 1 for c in kinds) and any(c.ndim == 3 for c in kinds)


def test_quick_stays_quick():
    # small enough to run in well under a minute: under 0.5 GFLOP per pass in total
    total = sum(c.flops for c in get_suite("quick"))
    assert total < 5e8, total
    assert {c.ndim for c in get_suite("quick")} >= {1, 2}


def test_sweep_axes():
    ks, ss = sweep_axes(get_suite("sweep"))
    assert len(ks) >= 3 and len(ss) >= 3
    assert len(get_suite("sweep")) == len(ks) * len(ss)
    assert sweep_axes(get_suite("quick")) is None
    assert sweep_axes(get_suite("sweep")[:-1]) is None  # an incomplete grid is not a sweep


def test_model_cases():
    pytest.importorskip("engine.zoo", reason="engine.zoo (helper E2) is not importable yet")
    cases = suites.model_cases("mnist", batch_size=4)
    assert [(c.x_shape, c.w_shape) for c in cases] == [
        ((4, 1, 28, 28), (20, 1, 5, 5)), ((4, 20, 24, 24), (40, 20, 5, 5))]
    resnet = suites.model_cases("small_resnet", batch_size=2)
    # the stem and four residual convs share two distinct shapes
    assert len(resnet) == len({(c.x_shape, c.w_shape) for c in resnet}) == 2
    for c in resnet:
        c.params()
