use ferrograd_cpu::Cpu;
use ferrograd_testing::conformance::*;

#[test]
fn scratch() {
    let cpu = Cpu::default();
    let t = std::time::Instant::now();
    let e = Tolerance::exact();
    for r in [
        storage::<f32, _>(&cpu, e),
        sample_kernel::<f32, _>(&cpu, e),
        sample_kernel::<f64, _>(&cpu, e),
        convert_kernel(&cpu, e),
        copy_kernel::<f32, _>(&cpu, e),
        gather_kernel::<f32, _>(&cpu, e),
        scatter_add_kernel::<f64, _>(&cpu, e),
        one_hot_kernel::<f32, _>(&cpu, e),
    ] {
        match r {
            Ok(r) => println!("{r}"),
            Err(f) => println!("FAIL {f}"),
        }
    }
    println!("{:?}", t.elapsed());
}
