use crate::device::{Cpu, CpuBuffer, try_vec};
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel, Comparison};
use ferrograd_device::ops::elementwise::Operand;
use ferrograd_device::{Dtype, Error, Layout, Unit};

impl<E: Unit + PartialOrd> CompareKernel<E> for Cpu {
    fn compare(
        &self,
        op: Comparison,
        lhs: &CpuBuffer<E>,
        lhs_layout: &Layout,
        rhs: &CpuBuffer<E>,
        rhs_layout: &Layout,
    ) -> Result<CpuBuffer<bool>, Error> {
        let mut out = try_vec(lhs_layout.num_elements())?;
        out.extend(
            lhs_layout
                .offsets()
                .zip(rhs_layout.offsets())
                .map(|(i, j)| op.apply(lhs[i], rhs[j])),
        );
        Ok(CpuBuffer(out))
    }

    fn compare_scalar(
        &self,
        op: Comparison,
        lhs: &CpuBuffer<E>,
        lhs_layout: &Layout,
        scalar: E,
    ) -> Result<CpuBuffer<bool>, Error> {
        let mut out = try_vec(lhs_layout.num_elements())?;
        out.extend(lhs_layout.offsets().map(|i| op.apply(lhs[i], scalar)));
        Ok(CpuBuffer(out))
    }
}

impl<E: Dtype> ChooseKernel<E> for Cpu {
    fn forward(
        &self,
        condition: &CpuBuffer<bool>,
        condition_layout: &Layout,
        on_true: &CpuBuffer<E>,
        on_true_layout: &Layout,
        on_false: &CpuBuffer<E>,
        on_false_layout: &Layout,
    ) -> Result<CpuBuffer<E>, Error> {
        let mut out = try_vec(condition_layout.num_elements())?;
        let offsets = condition_layout
            .offsets()
            .zip(on_true_layout.offsets())
            .zip(on_false_layout.offsets());
        out.extend(offsets.map(|((c, t), f)| if condition[c] { on_true[t] } else { on_false[f] }));
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        operand: Operand,
        condition: &CpuBuffer<bool>,
        condition_layout: &Layout,
        layout: &Layout,
        grad: &mut CpuBuffer<E>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let picks = operand == Operand::Lhs;
        for (k, (c, g)) in condition_layout.offsets().zip(layout.offsets()).enumerate() {
            if condition[c] == picks {
                grad[g] += grad_output[k];
            }
        }
        Ok(())
    }
}
