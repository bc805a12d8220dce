//! Unit tests of model/arch/file.rs.

use super::*;

fn parse(text: &str) -> Result<Architecture> {
    Architecture::parse("test.toml", text)
}

#[test]
fn shapes_chain_and_repeats_expand() {
    let a = parse(
        "input = { channels = 3, size = 8 }\n\
         [[block]]\ntype = \"conv\"\nchannels = 4\nkernel = 3\nrepeat = 2\n\
         [[block]]\ntype = \"conv-transpose\"\nchannels = 2\nkernel = 3\nstride = 2\n\
         [[block]]\ntype = \"dense\"\nwidth = 10\n",
    )
    .unwrap();
    assert_eq!(a.depth(), 4);
    assert_eq!(a.shape(2), Shape::Image(4, 8, 8));
    assert_eq!(a.shape(3), Shape::Image(2, 17, 17));
    assert_eq!(a.shape(4), Shape::Vector(10));
    let Block::Layer(conv) = &a.blocks[0] else {
        panic!()
    };
    assert_eq!(conv.fans(), (27, 36));
}

#[test]
fn inconsistent_files_name_the_block_and_key() {
    let cases = [
        (
            "input = 16\n[[block]]\ntype = \"conv\"\nchannels = 4\nkernel = 3\n",
            "block 1, key 'type'",
        ),
        (
            "input = { channels = 2, size = 4 }\n[[block]]\ntype = \"conv\"\nchannels = 4\nkernel = 5\n",
            "block 1, key 'kernel'",
        ),
        (
            "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\n[[block]]\ntype = \"residual\"\n[[block.layer]]\nwidth = 8\n",
            "block 2, key 'layer'",
        ),
        (
            "input = 16\n[[block]]\ntype = \"dense\"\nwidht = 16\n",
            "widht",
        ),
        (
            "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 16\nact = \"nope\"\n",
            "block 1, key 'act'",
        ),
        (
            "input = 16\n[[block]]\ntype = \"residual\"\nalpha = \"fixup\"\n[[block.layer]]\nwidth = 16\n",
            "block 1, key 'alpha'",
        ),
    ];
    for (text, want) in cases {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text}\n -> {e}");
    }
}

#[test]
fn fixup_and_inverse_sqrt_depth() {
    let a = parse(
        "input = 8\n[[block]]\ntype = \"residual\"\nalpha = \"fixup\"\nrepeat = 16\n\
         [[block.layer]]\nwidth = 8\n[[block.layer]]\nwidth = 8\n",
    )
    .unwrap();
    let Block::Residual { branch, alpha, .. } = &a.blocks[0] else {
        panic!()
    };
    assert_eq!(*alpha, 1.0);
    assert!((branch[0].scale - 16f64.powf(-0.5)).abs() < 1e-15);
    assert_eq!(branch[1].scale, 0.0);
    let b = parse("input = 8\n[[block]]\ntype = \"residual\"\nalpha = \"1/sqrt(L)\"\nrepeat = 4\n[[block.layer]]\nwidth = 8\n").unwrap();
    let Block::Residual { alpha, .. } = &b.blocks[3] else {
        panic!()
    };
    assert_eq!(*alpha, 0.5);
}

#[test]
fn a_sequence_repeats_its_layers_in_order() {
    let a = parse(
        "input = 8\n\
         [[block]]\ntype = \"sequence\"\nrepeat = 3\n\
         [[block.layer]]\ntype = \"dense\"\nwidth = 6\nact = \"identity\"\n\
         [[block.layer]]\ntype = \"layer-norm\"\nact = \"relu\"\n\
         [[block]]\ntype = \"dense\"\nwidth = 4\n",
    )
    .unwrap();
    assert_eq!(a.depth(), 7);
    for (i, block) in a.blocks.iter().enumerate() {
        let Block::Layer(l) = block else {
            panic!("block {i} is not a layer")
        };
        let norm = i < 6 && i % 2 == 1;
        assert_eq!(l.is_norm(), norm, "block {i}");
        let act = if norm {
            Activation::Relu
        } else if i < 6 {
            Activation::Identity
        } else {
            l.act
        };
        assert_eq!(l.act, act, "block {i}");
    }
    assert_eq!(a.shape(6), Shape::Vector(6));
    assert_eq!(a.shape(7), Shape::Vector(4));
    // keys of its layers on the sequence itself would be ignored: refused
    for (text, want) in [
        (
            "input = 8\n[[block]]\ntype = \"sequence\"\nwidth = 8\n[[block.layer]]\nwidth = 8\n",
            "block 1, key 'width'",
        ),
        (
            "input = 8\n[[block]]\ntype = \"sequence\"\n",
            "block 1, key 'layer'",
        ),
        (
            "input = 8\n[[block]]\ntype = \"sequence\"\nalpha = 0.5\n[[block.layer]]\nwidth = 8\n",
            "block 1, key 'alpha'",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text}\n -> {e}");
    }
}
