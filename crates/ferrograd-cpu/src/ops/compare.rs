use crate::host::{Cpu, CpuBuffer, try_vec};
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel, Comparison};
use ferrograd_device::ops::elementwise::Operand;
use ferrograd_device::view::{check_len, check_same_dims};
use ferrograd_device::{Dtype, Error, Unit, View, ViewMut};

impl<E: Unit + PartialOrd> CompareKernel<E> for Cpu {
    fn compare(
        &self,
        op: Comparison,
        lhs: View<'_, CpuBuffer<E>>,
        rhs: View<'_, CpuBuffer<E>>,
    ) -> Result<CpuBuffer<bool>, Error> {
        let name = op.name();
        lhs.check(name, "lhs")?;
        rhs.check(name, "rhs")?;
        check_same_dims(name, ("lhs", &lhs.layout), ("rhs", &rhs.layout))?;
        let mut out = try_vec(lhs.layout.num_elements())?;
        out.extend(
            lhs.layout
                .offsets()
                .zip(rhs.layout.offsets())
                .map(|(i, j)| op.apply(lhs.buffer[i], rhs.buffer[j])),
        );
        Ok(CpuBuffer(out))
    }

    fn compare_scalar(&self, op: Comparison, lhs: View<'_, CpuBuffer<E>>, scalar: E) -> Result<CpuBuffer<bool>, Error> {
        lhs.check(op.name(), "lhs")?;
        let mut out = try_vec(lhs.layout.num_elements())?;
        out.extend(lhs.layout.offsets().map(|i| op.apply(lhs.buffer[i], scalar)));
        Ok(CpuBuffer(out))
    }
}

impl<E: Dtype> ChooseKernel<E> for Cpu {
    fn forward(
        &self,
        condition: View<'_, CpuBuffer<bool>>,
        on_true: View<'_, CpuBuffer<E>>,
        on_false: View<'_, CpuBuffer<E>>,
    ) -> Result<CpuBuffer<E>, Error> {
        condition.check("choose", "condition")?;
        on_true.check("choose", "on_true")?;
        on_false.check("choose", "on_false")?;
        check_same_dims("choose", ("condition", &condition.layout), ("on_true", &on_true.layout))?;
        check_same_dims(
            "choose",
            ("condition", &condition.layout),
            ("on_false", &on_false.layout),
        )?;
        let mut out = try_vec(condition.layout.num_elements())?;
        let offsets = condition
            .layout
            .offsets()
            .zip(on_true.layout.offsets())
            .zip(on_false.layout.offsets());
        out.extend(offsets.map(|((c, t), f)| {
            if condition.buffer[c] {
                on_true.buffer[t]
            } else {
                on_false.buffer[f]
            }
        }));
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        operand: Operand,
        condition: View<'_, CpuBuffer<bool>>,
        grad: ViewMut<'_, CpuBuffer<E>>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        condition.check("choose", "condition")?;
        grad.check_accumulating("choose", "grad")?;
        check_same_dims("choose", ("condition", &condition.layout), ("grad", &grad.layout))?;
        check_len(
            "choose",
            "grad_output",
            grad_output.len(),
            condition.layout.num_elements(),
        )?;
        let picks = operand == Operand::Lhs;
        let offsets = condition.layout.offsets().zip(grad.layout.offsets());
        for (k, (c, g)) in offsets.enumerate() {
            if condition.buffer[c] == picks {
                grad.buffer[g] += grad_output[k];
            }
        }
        Ok(())
    }
}
