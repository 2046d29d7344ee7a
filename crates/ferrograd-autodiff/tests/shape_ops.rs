//! Views and shape ops: values against index arithmetic written out here, gradients
//! against central finite differences, inputs contiguous and viewed.

use ferrograd_autodiff::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

type Traced<S> = Tensor<S, f64, TestDevice, OwnedTape<f64, TestDevice>>;

fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance * (1.0 + e.abs()),
            "{what}: element {i}: {a} vs expected {e}"
        );
    }
}

/// Checks the gradient of `sum(w ⊙ f(x))` against central differences, for a seeded
/// random `w` of f's output size.
fn check_gradient<S: ConstShape, O: Shape>(what: &str, f: impl Fn(Traced<S>) -> Traced<O>) {
    let dev = seeded_test_device(5);
    let x: Tensor<S, f64, TestDevice> = dev.sample_normal();
    let values = x.as_vec();
    let output_len = f(x.leaky_trace()).num_elements();
    let weights = seeded_test_device(6).sample_normal_like(&(output_len,)).as_vec();
    let loss = |v: &[f64]| {
        let t = dev.tensor_from_vec(v.to_vec(), S::default());
        let out = f(t.leaky_trace()).as_vec();
        out.iter().zip(&weights).map(|(o, w)| o * w).sum::<f64>()
    };
    let traced_loss = {
        let out = f(x.leaky_trace());
        let shape = *out.shape();
        let w = dev.tensor_from_vec(weights.clone(), shape);
        (out * w).flatten().sum::<Rank0, _>()
    };
    let analytic = traced_loss.backward().get(&x).as_vec();
    let mut shifted = values.clone();
    let numeric: Vec<f64> = (0..values.len())
        .map(|i| {
            let h = 1e-6;
            shifted[i] = values[i] + h;
            let up = loss(&shifted);
            shifted[i] = values[i] - h;
            let down = loss(&shifted);
            shifted[i] = values[i];
            (up - down) / (2.0 * h)
        })
        .collect();
    assert_close(&analytic, &numeric, 1e-6, what);
}

#[test]
fn broadcast_permute_and_slice_read_the_right_elements() {
    let dev = test_device();
    let x = dev.tensor([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let b: Tensor<Rank3<2, 2, 3>, f64, _> = x.clone().broadcast::<_, Axis<0>>();
    assert_eq!(b.array(), [x.array(), x.array()]);
    let c: Tensor<Rank3<2, 4, 3>, f64, _> = x.clone().broadcast::<_, Axis<1>>();
    assert_eq!(c.array()[1], [[4.0, 5.0, 6.0]; 4]);
    let p = b.clone().permute::<Axes3<2, 0, 1>>();
    // p[k][i][j] = b[i][j][k] = x[j][k]
    let (pa, xa) = (p.array(), x.array());
    for (k, block) in pa.iter().enumerate() {
        for row in block {
            for (j, &value) in row.iter().enumerate() {
                assert_eq!(value, xa[j][k]);
            }
        }
    }
    let s = x.clone().slice((1..2, 0..=1));
    assert_eq!(s.as_vec(), vec![4.0, 5.0]);
    assert!(
        x.clone()
            .try_slice((0..3, ..))
            .unwrap_err()
            .to_string()
            .contains("out of bounds for axis 0 of size 2")
    );
    // A slice of a permuted view.
    assert_eq!(x.clone().t().slice((1.., ..1)).as_vec(), vec![2.0, 3.0]);
    let u = x.clone().unsqueeze::<2>();
    assert_eq!(u.dims(), [2, 3, 1]);
    assert_eq!(u.squeeze::<2>().array(), x.array());
    assert!(x.clone().realize::<(usize, usize)>().try_squeeze::<0>().is_err());
}

#[test]
fn broadcast_to_a_run_time_shape_checks_kept_dims() {
    let dev = test_device();
    let v = dev.tensor_from_vec(vec![1.0f32, 2.0, 3.0], (3usize,));
    let ok = v.clone().broadcast_like::<_, Axis<0>>(&(2usize, 3usize));
    assert_eq!(ok.as_vec(), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    let err = v.try_broadcast_like::<_, Axis<0>>(&(2usize, 4usize)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "broadcast: cannot broadcast [3] to [2, 4] along axes [0]"
    );
}

#[test]
fn reshape_copies_only_when_it_must() {
    let dev = test_device();
    let x = dev.tensor([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let r: Tensor<Rank2<3, 2>, f64, _> = x.clone().reshape();
    assert_eq!(r.array(), [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    assert_eq!(r.id(), x.id(), "a contiguous reshape is a view");
    let rt: Tensor<Rank2<3, 2>, f64, _> = x.clone().t().reshape::<Rank1<6>>().reshape();
    assert_eq!(rt.array(), [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]);
    assert_ne!(rt.id(), x.id(), "a transposed reshape copies");
    let err = x
        .clone()
        .realize::<(usize, usize)>()
        .try_reshape_like(&(4usize,))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "reshape: cannot reshape [2, 3] (6 elements) to [4] (4 elements)"
    );
    assert_eq!(x.flatten().dims(), [6]);
}

#[test]
fn concat_and_stack() {
    let dev = test_device();
    let a = dev.tensor([[1.0f64, 2.0], [3.0, 4.0]]);
    let b = dev.tensor([[5.0f64, 6.0]]);
    let rows = a.clone().concat_along(Axis::<0>, b.clone());
    assert_eq!(rows.as_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cols = a.clone().concat_along(Axis::<1>, a.clone().t());
    assert_eq!(
        cols.realize::<Rank2<2, 4>>().array(),
        [[1.0, 2.0, 1.0, 3.0], [3.0, 4.0, 2.0, 4.0]]
    );
    let err = a
        .clone()
        .realize::<(usize, usize)>()
        .try_concat_along(Axis::<1>, b.clone().realize::<(usize, usize)>());
    assert_eq!(
        err.unwrap_err().to_string(),
        "concat: [2, 2] and [1, 2] differ outside axis 1"
    );
    let s: Tensor<Rank3<3, 2, 2>, f64, _> = stack([a.clone(), a.clone().t(), a.clone()]);
    assert_eq!(s.array()[1], [[1.0, 3.0], [2.0, 4.0]]);
    let v = vec![b.clone(), b.clone()].stack();
    assert_eq!(v.dims(), [2, 1, 2]);
    assert!(Vec::<Tensor<Rank1<2>, f64, TestDevice>>::new().try_stack().is_err());
    let mismatched = vec![dev.zeros_like(&(2usize,)), dev.zeros_like(&(3usize,))];
    let err: Result<Tensor<(usize, usize), f64, TestDevice>, _> = mismatched.try_stack();
    assert_eq!(
        err.unwrap_err().to_string(),
        "stack: tensor 1 has shape [3], tensor 0 has [2]"
    );
}

#[test]
fn gradients_through_views_match_finite_differences() {
    check_gradient::<Rank2<2, 3>, _>("broadcast", |x| x.broadcast::<Rank3<4, 2, 3>, _>().square());
    check_gradient::<Rank3<2, 3, 4>, _>("permute", |x| x.permute::<Axes3<2, 0, 1>>().sin());
    check_gradient::<Rank2<4, 5>, _>("slice", |x| x.slice((1..3, 2..)).exp());
    check_gradient::<Rank2<4, 5>, _>("slice of a permute", |x| x.t().slice((1..4, ..3)).tanh());
    check_gradient::<Rank2<2, 3>, _>("reshape of a transpose", |x| x.t().reshape::<Rank1<6>>().square());
    check_gradient::<Rank2<2, 3>, _>("contiguous of a broadcast", |x| {
        x.broadcast::<Rank3<2, 2, 3>, Axis<0>>()
            .permute::<Axes3<1, 2, 0>>()
            .contiguous()
            .sigmoid()
    });
    check_gradient::<Rank2<2, 3>, _>("unsqueeze + squeeze", |x| x.unsqueeze::<1>().sin().squeeze::<1>());
    check_gradient::<Rank2<3, 2>, _>("concat with itself, transposed", |x| {
        x.clone().t().concat_along(Axis::<1>, x.t().square())
    });
    check_gradient::<Rank2<2, 3>, _>("stack of views", |x| stack([x.clone(), x.clone().exp(), x.sin()]));
    check_gradient::<Rank1<3>, _>("used through two views", |x| {
        let a: Traced<Rank2<3, 3>> = x.clone().broadcast::<_, Axis<0>>();
        let b: Traced<Rank2<3, 3>> = x.broadcast::<_, Axis<1>>();
        a * b
    });
}
