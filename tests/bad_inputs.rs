//! Bad input across every subcommand (issue 15): each case must exit with
//! its code (2: bad input), print a first line that starts with `error:`
//! and names what was wrong (the flag, key or file), print no panic, leave
//! no file behind in its working directory, and stop before any work: the
//! binary runs with VARPROP_TEST_NO_WORK, which turns the start of any GPU
//! or CPU-engine work into an error of its own (a marker, not a timing).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Files every case finds in its working directory.
const FIXTURES: &[(&str, &str)] = &[
    (
        "good.toml",
        "width = 16\ndepth = 2\nnetworks = 2\nbatch = 4\n[grid]\nseed = [0, 1]\n",
    ),
    ("empty.toml", ""),
    (
        "scalar_grid.toml",
        "width = 16\ndepth = 2\n[grid]\nseed = 3\n",
    ),
    ("unknown_key.toml", "width = 16\ndepht = 2\n"),
    ("bad_value.toml", "width = -3\n"),
    ("bad_syntax.toml", "width = = 16\n"),
    ("grid_unknown.toml", "width = 16\n[grid]\nsedd = [1, 2]\n"),
    ("grid_empty_list.toml", "width = 16\n[grid]\nseed = []\n"),
    ("binary.toml", "\u{0}\u{1}\u{2}garbage"),
    (
        "suite_ok.toml",
        "[[case]]\nname = \"a\"\nwidth = 16\ndepth = 2\nnetworks = 2\nbatch = 4\n",
    ),
    ("suite_no_name.toml", "[[case]]\nwidth = 16\ndepth = 2\n"),
    (
        "suite_dup.toml",
        "[[case]]\nname = \"a\"\nwidth = 16\n[[case]]\nname = \"a\"\nwidth = 32\n",
    ),
    (
        "suite_escape.toml",
        "[[case]]\nname = \"../../escape\"\nwidth = 16\n",
    ),
    ("suite_slash.toml", "[[case]]\nname = \"a/b\"\nwidth = 16\n"),
    (
        "suite_dot.toml",
        "[[case]]\nname = \".hidden\"\nwidth = 16\n",
    ),
    ("suite_empty.toml", "max-z = 5\n"),
    (
        "suite_nan.toml",
        "max-z = nan\n[[case]]\nname = \"a\"\nwidth = 16\n",
    ),
    (
        "suite_neg.toml",
        "max-z = -1\n[[case]]\nname = \"a\"\nwidth = 16\n",
    ),
    ("suite_unknown.toml", "[[case]]\nname = \"a\"\nwdth = 16\n"),
    (
        "suite_bad_case.toml",
        "[[case]]\nname = \"a\"\nwidth = 16\n[[case]]\nname = \"b\"\nwidth = 0\n",
    ),
    (
        "arch_unknown.toml",
        "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\nwdith = 3\n",
    ),
    (
        "arch_bad_type.toml",
        "input = 16\n[[block]]\ntype = \"dance\"\nwidth = 16\n",
    ),
    (
        "arch_zero_input.toml",
        "input = 0\n[[block]]\ntype = \"dense\"\nwidth = 16\n",
    ),
    ("arch_no_blocks.toml", "input = 16\n"),
    (
        "arch_dense_bn.toml",
        "input = 16\nblock = [ { type = \"dense\", width = 16, init = \"he-normal\" }, { type = \"batch-norm\", act = \"relu\" } ]\n",
    ),
    (
        "arch_bad_act.toml",
        "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\nact = \"rleu\"\n",
    ),
    (
        "arch_bad_init.toml",
        "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\ninit = \"he\"\n",
    ),
    (
        "arch_norm_width.toml",
        "input = 16\n[[block]]\ntype = \"layer-norm\"\nwidth = 16\n",
    ),
    (
        "arch_norm_eps.toml",
        "input = 16\n[[block]]\ntype = \"batch-norm\"\neps = -1e-5\n",
    ),
    (
        "arch_norm_init.toml",
        "input = 16\n[[block]]\ntype = \"rms-norm\"\ninit = \"he-normal\"\n",
    ),
    (
        "arch_dense_eps.toml",
        "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\neps = 0.1\n",
    ),
    (
        "arch_empty_branch.toml",
        "input = 16\n[[block]]\ntype = \"residual\"\n",
    ),
    (
        "arch_ws_tanh.toml",
        "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\nact = \"tanh\"\n[[block]]\ntype = \"dense\"\nwidth = 16\nweight-standardisation = \"scaled\"\n",
    ),
    (
        "arch_ws_orthogonal.toml",
        "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\ninit = \"orthogonal\"\nweight-standardisation = \"plain\"\n",
    ),
    (
        "arch_ws_unknown.toml",
        "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\nweight-standardisation = \"scale\"\n",
    ),
    (
        "arch_stride_circular.toml",
        "input = { channels = 2, size = 5 }\n[[block]]\ntype = \"conv\"\nchannels = 2\nkernel = 3\nstride = 2\n",
    ),
    (
        "arch_pool_vector.toml",
        "input = 16\n[[block]]\ntype = \"avg-pool\"\nkernel = 2\n",
    ),
    (
        "arch_norm_factor.toml",
        "input = 16\n[[block]]\ntype = \"layer-norm\"\nfactor = 2.0\n",
    ),
    (
        "arch_attention_vector.toml",
        "input = 16\n[[block]]\ntype = \"attention\"\n",
    ),
    (
        "arch_attention_heads.toml",
        "input = { tokens = 4, width = 6 }\n[[block]]\ntype = \"attention\"\nheads = 4\n",
    ),
    (
        "arch_attention_orthogonal.toml",
        "input = { tokens = 4, width = 8 }\n[[block]]\ntype = \"attention\"\ninit = \"orthogonal\"\n",
    ),
    (
        "arch_dense_heads.toml",
        "input = { tokens = 4, width = 8 }\n[[block]]\ntype = \"dense\"\nwidth = 8\nheads = 2\n",
    ),
    (
        "arch_transformer_norm.toml",
        "input = { tokens = 4, width = 8 }\n[[block]]\ntype = \"transformer\"\nnorm = \"middle\"\n",
    ),
    (
        "arch_dense_norm.toml",
        "input = 8\n[[block]]\ntype = \"dense\"\nwidth = 8\nnorm = \"pre\"\n",
    ),
    (
        "arch_attention_mix_nan.toml",
        "input = { tokens = 4, width = 8 }\n[[block]]\ntype = \"attention\"\nidentity-mix = nan\n",
    ),
    (
        "arch_zero_tokens.toml",
        "input = { tokens = 0, width = 8 }\n[[block]]\ntype = \"attention\"\n",
    ),
    ("a_file", "not a directory\n"),
];

/// (arguments, exit code, what the first line must name)
const CASES: &[(&str, i32, &str)] = &[
    // run: numbers
    ("run --width 0", 2, "--width"),
    ("run --width -5", 2, "--width"),
    ("run --width abc", 2, "--width"),
    ("run --width 1.5", 2, "--width"),
    ("run --width 99999999999999999999999", 2, "--width"),
    ("run --depth 0", 2, "--depth"),
    ("run --depth -1", 2, "--depth"),
    ("run --depth 1.5", 2, "--depth"),
    ("run --depth 10000000000", 2, "--depth"),
    ("run --width 32 --depth 5000000", 2, "--depth"),
    ("run --batch 0", 2, "--batch"),
    ("run --batch 3", 2, "--batch"),
    ("run --batch -2", 2, "--batch"),
    ("run --batch x", 2, "--batch"),
    ("run --networks 0", 2, "--networks"),
    ("run --networks -1", 2, "--networks"),
    ("run --networks 1000000000", 2, "--networks"),
    ("run --seed -1", 2, "--seed"),
    ("run --seed 1.5", 2, "--seed"),
    ("run --seed abc", 2, "--seed"),
    ("run --q0 0", 2, "--q0"),
    ("run --q0 -1", 2, "--q0"),
    ("run --q0 nan", 2, "--q0"),
    ("run --q0 inf", 2, "--q0"),
    ("run --q0 x", 2, "--q0"),
    ("run --c0 2", 2, "--c0"),
    ("run --c0 -1.5", 2, "--c0"),
    ("run --c0 nan", 2, "--c0"),
    ("run --init custom --sigma-w2 -1", 2, "--sigma-w2"),
    ("run --init custom --sigma-w2 nan", 2, "--sigma-w2"),
    ("run --init custom --sigma-w2 inf", 2, "--sigma-w2"),
    (
        "run --init custom --sigma-w2 1 --sigma-b2 -0.1",
        2,
        "--sigma-b2",
    ),
    (
        "run --init custom --sigma-w2 1 --sigma-b2 nan",
        2,
        "--sigma-b2",
    ),
    ("run --sigma-w2 x", 2, "--sigma-w2"),
    ("run --act leaky-relu --alpha nan", 2, "--alpha"),
    ("run --act leaky-relu --alpha inf", 2, "--alpha"),
    ("run --act relu --alpha 0.1", 2, "--alpha"),
    ("run --act sin --omega nan", 2, "--omega"),
    ("run --act tanh --omega 30", 2, "--omega"),
    ("run --init orthogonal --gain -1", 2, "--gain"),
    ("run --init orthogonal --gain nan", 2, "--gain"),
    ("run --widths 16", 2, "--widths"),
    ("run --widths 16,0,8", 2, "--widths"),
    ("run --widths 16,abc", 2, "--widths"),
    ("run --widths 16x0", 2, "--widths"),
    ("run --widths 16x10000000000", 2, "--widths"),
    ("run --widths 16,8 --width 4", 2, "--widths"),
    ("run --widths 16,8 --depth 4", 2, "--depth"),
    ("run --chunk 0", 2, "--chunk"),
    ("run --every 0", 2, "--every"),
    ("run --every 3 --format csv", 2, "--every"),
    ("run --every 3 --out x.json", 2, "--every"),
    ("run --ntk --backward", 2, "--ntk"),
    ("run --columns ntk_layer --device cpu", 2, "--columns"),
    ("run --ntk --device gpu --weight-grads", 2, "--ntk"),
    ("compare --ntk", 2, "--ntk"),
    (
        "run --parametrisation standard --device cpu",
        2,
        "--parametrisation",
    ),
    (
        "run --ntk --parametrisation neural --device cpu",
        2,
        "--parametrisation",
    ),
    (
        "run --ntk --arch arch_dense_bn.toml --engine gram",
        2,
        "batch-norm",
    ),
    // sequences and attention
    ("run --arch arch_attention_vector.toml", 2, "sequence input"),
    ("run --arch arch_attention_heads.toml", 2, "heads"),
    ("run --arch arch_attention_orthogonal.toml", 2, "init"),
    ("run --arch arch_dense_heads.toml", 2, "heads"),
    ("run --arch arch_transformer_norm.toml", 2, "norm"),
    ("run --arch arch_dense_norm.toml", 2, "norm"),
    ("run --arch arch_zero_tokens.toml", 2, "input"),
    ("run --arch arch_attention_mix_nan.toml", 2, "identity-mix"),
    (
        "run --arch architectures/dense.toml --tokens 4",
        2,
        "--tokens",
    ),
    ("run --tokens 4", 2, "--tokens"),
    (
        "run --arch architectures/transformers/pre_ln.toml --tokens 0",
        2,
        "--tokens",
    ),
    (
        "run --arch architectures/transformers/pre_ln.toml --token-c0 1.5",
        2,
        "--token-c0",
    ),
    (
        "run --arch architectures/transformers/pre_ln.toml --engine blocks",
        2,
        "--engine",
    ),
    (
        "run --arch architectures/transformers/pre_ln.toml --ntk",
        2,
        "--ntk",
    ),
    ("tokens", 2, "--arch"),
    ("tokens --arch architectures/dense.toml", 2, "--arch"),
    (
        "tokens --arch architectures/transformers/pre_ln.toml,missing.toml",
        2,
        "missing.toml",
    ),
    (
        "tokens --arch architectures/transformers/pre_ln.toml --out t.csv",
        2,
        "--out",
    ),
    (
        "tokens --arch architectures/transformers/pre_ln.toml --plot t.txt",
        2,
        "--plot",
    ),
    ("check --ntk", 2, "--ntk"),
    ("theory --parametrisation ntk", 2, "--parametrisation"),
    ("theory --ntk --summary", 2, "--ntk"),
    ("theory --ntk --parametrisation sp", 2, "--parametrisation"),
    ("theory --ntk --init torch-default", 2, "--ntk"),
    (
        "run --backward --checkpoint-every 0",
        2,
        "--checkpoint-every",
    ),
    ("run --backward --max-memory 0", 2, "--max-memory"),
    ("run --backward --max-memory lots", 2, "--max-memory"),
    ("run --backward --max-memory 1Q", 2, "--max-memory"),
    // run: names
    ("run --act rleu", 2, "--act"),
    ("run --init he", 2, "--init"),
    ("run --dist cauchy", 2, "--dist"),
    ("run --fan-mode sideways", 2, "--fan-mode"),
    ("run --engine fast", 2, "--engine"),
    ("run --device tpu", 2, "--device"),
    ("run --format xml", 2, "--format"),
    (
        "run --plot-quantity both --plot p.svg",
        2,
        "--plot-quantity",
    ),
    ("run --bias zero", 2, "--bias"),
    ("run --bogus", 2, "--bogus"),
    // run: combinations that would ignore a flag
    ("run --init he-normal --sigma-w2 2", 2, "--sigma-w2"),
    ("run --init he-normal --gain 0", 2, "--gain"),
    ("run --checkpoint-every 5", 2, "--checkpoint-every"),
    ("run --max-memory 1G", 2, "--max-memory"),
    ("run --device cpu --adapter 0", 2, "--adapter"),
    ("run --device cpu --engine gram", 2, "--engine"),
    ("run --plot-quantity pre", 2, "--plot-quantity"),
    ("run --position-map map.csv", 2, "--position-map"),
    ("run --position-layer 1", 2, "--position-map"),
    ("run --engine dense --bias mean-preserving", 2, "--engine"),
    (
        "run --arch architectures/dense.toml --width 16",
        2,
        "--width",
    ),
    ("run --arch architectures/dense.toml --act tanh", 2, "--act"),
    (
        "run --arch architectures/conv.toml --engine gram",
        2,
        "--engine",
    ),
    (
        "run --arch architectures/residual.toml --engine gram",
        2,
        "--engine",
    ),
    (
        "run --arch architectures/layer_norm_mlp.toml --engine gram --spp",
        2,
        "--spp",
    ),
    ("run --engine blocks --width 16 --depth 2", 2, "--engine"),
    ("run --engine nope", 2, "--engine"),
    (
        "run --arch architectures/dense.toml --engine dense",
        2,
        "--engine",
    ),
    (
        "run --weight-grads --engine gram --init orthogonal --width 8",
        2,
        "--engine",
    ),
    // run: files
    ("run --arch missing.toml", 2, "missing.toml"),
    ("run --arch binary.toml", 2, "binary.toml"),
    ("run --arch arch_unknown.toml", 2, "arch_unknown.toml"),
    ("run --arch arch_bad_type.toml", 2, "arch_bad_type.toml"),
    ("run --arch arch_zero_input.toml", 2, "arch_zero_input.toml"),
    ("run --arch arch_no_blocks.toml", 2, "arch_no_blocks.toml"),
    ("run --arch arch_bad_act.toml", 2, "arch_bad_act.toml"),
    ("run --arch arch_bad_init.toml", 2, "arch_bad_init.toml"),
    ("run --arch .", 2, "--arch"),
    ("run --arch arch_norm_width.toml", 2, "'width'"),
    ("run --arch arch_norm_eps.toml", 2, "'eps'"),
    ("run --arch arch_norm_init.toml", 2, "'init'"),
    ("run --arch arch_dense_eps.toml", 2, "'eps'"),
    ("run --arch arch_empty_branch.toml", 2, "'layer'"),
    ("run --spp", 2, "--spp"),
    ("run --arch arch_norm_factor.toml", 2, "'factor'"),
    ("run --arch arch_stride_circular.toml", 2, "'stride'"),
    ("run --arch arch_pool_vector.toml", 2, "'type'"),
    ("run --arch arch_ws_tanh.toml", 2, "'gamma'"),
    (
        "run --arch arch_ws_orthogonal.toml",
        2,
        "'weight-standardisation'",
    ),
    (
        "run --arch arch_ws_unknown.toml",
        2,
        "'weight-standardisation'",
    ),
    ("check --arch architectures/dense.toml --spp", 2, "--spp"),
    ("run --widths -16,8", 2, "--widths"),
    ("compare --sigma-w2s -1,2", 2, "--sigma-w2s"),
    // run: destinations and formats
    ("run --out nodir/x.csv", 2, "--out"),
    ("run --out a_file/x.csv", 2, "--out"),
    ("run --out .", 2, "--out"),
    ("run --plot nodir/x.svg", 2, "--plot"),
    ("run --plot x.gif", 2, "--plot"),
    ("run --plot x", 2, "--plot"),
    ("run --format json --out x.csv", 2, "--format"),
    ("run --format csv --out x.json", 2, "--format"),
    ("run --format table --out x.csv", 2, "--format"),
    (
        "run --arch architectures/conv.toml --position-map nodir/m.csv",
        2,
        "--position-map",
    ),
    // theory
    ("theory --depth 0", 2, "--depth"),
    ("theory --depth 10000000000", 2, "--depth"),
    ("theory --depth 9000000", 2, "--depth"),
    ("theory --width -1", 2, "--width"),
    ("theory --act rleu", 2, "--act"),
    ("theory --init siren --summary", 2, "--init"),
    ("theory --init torch-default --summary", 2, "--init"),
    (
        "run --init he-normal --nonlinearity gelu",
        2,
        "--nonlinearity",
    ),
    ("run --act gelu --gain-from-act", 2, "--gain-from-act"),
    ("run --convention keras", 2, "--convention"),
    ("run --init xavier-normal --kaiming-a 0.2", 2, "--kaiming-a"),
    ("inits --fan-in 0", 2, "--fan-in"),
    ("inits --convention torch", 2, "--convention"),
    ("theory --arch good.toml", 2, "--arch"),
    ("theory --bias mean-preserving", 2, "--bias"),
    ("theory --summary --edge-of-chaos", 2, "--summary"),
    ("theory --summary --every 3", 2, "--every"),
    ("theory --every 0", 2, "--every"),
    ("theory --every 3 --format json", 2, "--every"),
    ("theory --edge-of-chaos", 2, "--edge-of-chaos"),
    ("theory --out nodir/t.csv", 2, "--out"),
    ("theory --format json --out t.csv", 2, "--format"),
    ("theory --summary --depth 1", 2, "--depth"),
    ("theory --q0 -1", 2, "--q0"),
    // check
    ("check --max-z nan", 2, "--max-z"),
    ("check --max-z inf", 2, "--max-z"),
    ("check --max-z -1", 2, "--max-z"),
    ("check --max-z 0", 2, "--max-z"),
    ("check --max-z x", 2, "--max-z"),
    ("check --networks 1", 2, "--networks"),
    ("check --name ../../x --golden g --bless", 2, "--name"),
    ("check --name a/b --golden g --bless", 2, "--name"),
    ("check --name .x --golden g --bless", 2, "--name"),
    ("check --name '' --golden g --bless", 2, "--name"),
    ("check --golden missing_dir", 2, "--golden"),
    ("check --golden a_file --bless", 2, "--golden"),
    ("check --bless", 2, "--bless"),
    ("check --every 3", 2, "--every"),
    ("check --position-map m.csv", 2, "--position-map"),
    ("check --checkpoint-every 3", 2, "--checkpoint-every"),
    ("check --out nodir/c.txt", 2, "--out"),
    ("check --config missing.toml", 2, "missing.toml"),
    ("check --config empty.toml", 2, "empty.toml"),
    ("check --config suite_no_name.toml", 2, "suite_no_name.toml"),
    ("check --config suite_dup.toml", 2, "suite_dup.toml"),
    (
        "check --config suite_escape.toml --golden g --bless",
        2,
        "suite_escape.toml",
    ),
    ("check --config suite_slash.toml", 2, "suite_slash.toml"),
    ("check --config suite_dot.toml", 2, "suite_dot.toml"),
    ("check --config suite_empty.toml", 2, "suite_empty.toml"),
    ("check --config suite_nan.toml", 2, "suite_nan.toml"),
    ("check --config suite_neg.toml", 2, "suite_neg.toml"),
    ("check --config suite_unknown.toml", 2, "suite_unknown.toml"),
    (
        "check --config suite_bad_case.toml",
        2,
        "suite_bad_case.toml",
    ),
    ("check --config binary.toml", 2, "binary.toml"),
    ("check --config suite_ok.toml --name x", 2, "--name"),
    (
        "check --config suite_ok.toml --golden missing_dir",
        2,
        "--golden",
    ),
    // compare
    ("compare --inits he,xavier", 2, "--inits"),
    ("compare --acts relu,rleu", 2, "--acts"),
    ("compare --sigma-w2s 1,x", 2, "--sigma-w2s"),
    ("compare --sigma-w2s 1,-2", 2, "--sigma-w2s"),
    ("compare --sigma-w2s 1,nan", 2, "--sigma-w2s"),
    ("compare --inits ''", 2, "--inits"),
    (
        "compare --inits he-normal,xavier-normal --every 3",
        2,
        "--every",
    ),
    ("compare --out nodir/c.csv", 2, "--out"),
    ("compare --format json --out c.csv", 2, "--format"),
    (
        "compare --inits he-normal,xavier-normal --checkpoint-every 3",
        2,
        "--checkpoint-every",
    ),
    (
        "compare --inits he-normal,xavier-normal --networks 1",
        2,
        "--networks",
    ),
    // phase
    ("phase --backward", 2, "--backward"),
    ("phase --jacobian", 2, "--jacobian"),
    ("phase --weight-grads", 2, "--weight-grads"),
    ("phase --ntk", 2, "--ntk"),
    ("phase --every 2", 2, "--every"),
    ("phase --checkpoint-every 2", 2, "--checkpoint-every"),
    (
        "phase --plot-quantity pre --plot p.svg",
        2,
        "--plot-quantity",
    ),
    (
        "phase --sigma-w2-range 1:2:1000000000",
        2,
        "--sigma-w2-range",
    ),
    (
        "phase --sigma-w2-range 1:2:1000 --sigma-b2-range 0:1:1000",
        2,
        "--sigma-w2-range",
    ),
    ("phase --sigma-w2-range 2:1:5", 2, "--sigma-w2-range"),
    ("phase --sigma-w2-range 1:2:0", 2, "--sigma-w2-range"),
    ("phase --sigma-w2-range a:b:c", 2, "--sigma-w2-range"),
    ("phase --sigma-w2-range 1:2", 2, "--sigma-w2-range"),
    ("phase --sigma-b2-range -1:1:3", 2, "--sigma-b2-range"),
    ("phase --sigma-w2-range nan:1:3", 2, "--sigma-w2-range"),
    ("phase --networks 1", 2, "--networks"),
    ("phase --out nodir/p.csv", 2, "--out"),
    ("phase --plot nodir/p.svg", 2, "--plot"),
    // sweep and merge
    ("sweep missing.toml --out-dir r", 2, "missing.toml"),
    ("sweep empty.toml --out-dir r", 2, "empty.toml"),
    ("sweep scalar_grid.toml --out-dir r", 2, "scalar_grid.toml"),
    ("sweep unknown_key.toml --out-dir r", 2, "unknown_key.toml"),
    ("sweep bad_value.toml --out-dir r", 2, "bad_value.toml"),
    ("sweep bad_syntax.toml --out-dir r", 2, "bad_syntax.toml"),
    (
        "sweep grid_unknown.toml --out-dir r",
        2,
        "grid_unknown.toml",
    ),
    (
        "sweep grid_empty_list.toml --out-dir r",
        2,
        "grid_empty_list.toml",
    ),
    ("sweep binary.toml --out-dir r", 2, "binary.toml"),
    ("sweep good.toml --out-dir a_file", 2, "a_file"),
    ("sweep good.toml --out-dir r --shard 3/3", 2, "--shard"),
    ("sweep good.toml --out-dir r --shard -1/3", 2, "--shard"),
    ("sweep good.toml --out-dir r --shard 1/0", 2, "--shard"),
    ("sweep good.toml --out-dir r --shard x", 2, "--shard"),
    ("sweep good.toml --out-dir r --chunk 0", 2, "--chunk"),
    (
        "sweep good.toml --out-dir r --device cpu --adapter 0",
        2,
        "--adapter",
    ),
    ("merge missing_dir", 2, "missing_dir"),
    ("merge a_file", 2, "a_file"),
    // bench and devices
    ("bench --out nodir/b.json", 2, "--out"),
    ("bench --format csv", 2, "--format"),
    ("devices --format xml", 2, "--format"),
    ("columns --format xml", 2, "--format"),
    ("nosuchcommand", 2, "nosuchcommand"),
];

/// The files below `dir`, relative to it.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            out.insert(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// Splits a case's arguments on spaces; '' is an empty argument.
fn words(args: &str) -> Vec<String> {
    args.split(' ')
        .map(|w| {
            if w == "''" {
                String::new()
            } else {
                w.to_string()
            }
        })
        .collect()
}

#[test]
fn every_bad_input_is_refused_cleanly_before_any_work() {
    assert!(CASES.len() >= 150, "{} cases", CASES.len());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::temp_dir("bad_inputs");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in FIXTURES {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::os::unix::fs::symlink(repo.join("architectures"), dir.join("architectures")).unwrap();
    let before = listing(&dir);
    let mut failures = Vec::new();
    for &(args, code, names) in CASES {
        let out = Command::new(env!("CARGO_BIN_EXE_varprop"))
            .args(words(args))
            .current_dir(&dir)
            .env("VARPROP_TEST_NO_WORK", "1")
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.contains("XDG_RUNTIME_DIR"))
            .unwrap_or("");
        let mut wrong = Vec::new();
        if out.status.code() != Some(code) {
            wrong.push(format!("exit {:?}, expected {code}", out.status.code()));
        }
        if !first.starts_with("error: ") || !first.contains(names) {
            wrong.push(format!("first line does not name {names}"));
        }
        if stderr.contains("panicked") || stderr.contains("internal error") {
            wrong.push("panicked".into());
        }
        if stderr.contains("VARPROP_TEST_NO_WORK") {
            wrong.push("work started before the refusal".into());
        }
        let after = listing(&dir);
        if after != before {
            let made: Vec<_> = after.difference(&before).cloned().collect();
            wrong.push(format!("left files {made:?}"));
            for f in &made {
                let p = dir.join(f);
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("varprop {args}: {} — {first}", wrong.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs not refused cleanly:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn a_panic_is_one_line_and_exit_code_3() {
    let out = Command::new(env!("CARGO_BIN_EXE_varprop"))
        .args(["theory", "--depth", "3"])
        .env("VARPROP_TEST_PANIC", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: internal error (a bug in varprop"),
        "{stderr}"
    );
    assert!(stderr.contains("VARPROP_TEST_PANIC is set"), "{stderr}");
    assert!(out.stdout.is_empty());
}
