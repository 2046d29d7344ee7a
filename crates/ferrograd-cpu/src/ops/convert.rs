use crate::host::{Cpu, CpuBuffer, try_vec};
use crate::ops::elementwise::is_dense;
use ferrograd_device::ops::convert::{CastTo, ConvertKernel};
use ferrograd_device::{Error, Unit, View};

impl<From: CastTo<To>, To: Unit> ConvertKernel<From, To> for Cpu {
    fn convert(&self, input: View<'_, CpuBuffer<From>>) -> Result<CpuBuffer<To>, Error> {
        input.check("convert", "input")?;
        let View { buffer: input, layout } = input;
        let numel = layout.num_elements();
        let mut out = try_vec(numel)?;
        if is_dense(&layout, input) {
            out.extend(input[..numel].iter().map(|&x| x.cast()));
        } else {
            out.extend(layout.offsets().map(|i| input[i].cast()));
        }
        Ok(CpuBuffer(out))
    }
}
