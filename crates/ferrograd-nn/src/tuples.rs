//! Tuples as sequential models (PyTorch's `nn.Sequential`): each element takes the
//! previous one's output, and parameters are named by position (`0.weight`, `2.bias`).

use crate::module::{BuildOnDevice, Module, ModuleMut};
use ferrograd_device::{Dtype, Error, Storage};

/// Building a tuple of layers (their parameters are visited by position, as
/// `ferrograd-autodiff` implements for tuples).
macro_rules! sequential {
    ($($layer:ident $index:tt),+) => {
        impl<E: Dtype, D: Storage<E>, $($layer: BuildOnDevice<E, D>),+> BuildOnDevice<E, D> for ($($layer,)+) {
            type Built = ($($layer::Built,)+);
            fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
                Ok(($(self.$index.try_build_on_device(device)?,)+))
            }
        }

    };
}

/// Running a tuple of layers in sequence. Each layer is listed with its position, the
/// type it takes and the type it gives; the last gives the tuple's output. (Naming the
/// types in between keeps a size mismatch's error about the one layer that cannot take
/// its input.)
macro_rules! sequential_forward {
    ($($layer:ident $index:tt $input:ident $output:ident),* ; $last:ident $last_index:tt $last_input:ident) => {
        impl<$($input,)* $last_input, $($layer,)* $last> Module<X> for ($($layer,)* $last,)
        where
            $($layer: Module<$input, Output = $output>,)*
            $last: Module<$last_input>,
        {
            type Output = $last::Output;
            fn try_forward(&self, input: X) -> Result<Self::Output, Error> {
                $(let input = self.$index.try_forward(input)?;)*
                self.$last_index.try_forward(input)
            }
        }

        impl<$($input,)* $last_input, $($layer,)* $last> ModuleMut<X> for ($($layer,)* $last,)
        where
            $($layer: ModuleMut<$input, Output = $output>,)*
            $last: ModuleMut<$last_input>,
        {
            type Output = $last::Output;
            fn try_forward_mut(&mut self, input: X) -> Result<Self::Output, Error> {
                $(let input = self.$index.try_forward_mut(input)?;)*
                self.$last_index.try_forward_mut(input)
            }
        }
    };
}

sequential!(A 0);
sequential!(A 0, B 1);
sequential!(A 0, B 1, C 2);
sequential!(A 0, B 1, C 2, F 3);
sequential!(A 0, B 1, C 2, F 3, G 4);
sequential!(A 0, B 1, C 2, F 3, G 4, H 5);
sequential!(A 0, B 1, C 2, F 3, G 4, H 5, I 6);
sequential!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7);
sequential!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8);
sequential!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8, L 9);
sequential!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8, L 9, M 10);
sequential!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8, L 9, M 10, N 11);
sequential_forward!(; A 0 X);
sequential_forward!(A 0 X Y1; B 1 Y1);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2; C 2 Y2);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3; F 3 Y3);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4; G 4 Y4);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4, G 4 Y4 Y5; H 5 Y5);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4, G 4 Y4 Y5, H 5 Y5 Y6; I 6 Y6);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4, G 4 Y4 Y5, H 5 Y5 Y6, I 6 Y6 Y7; J 7 Y7);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4, G 4 Y4 Y5, H 5 Y5 Y6, I 6 Y6 Y7, J 7 Y7 Y8; K 8 Y8);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4, G 4 Y4 Y5, H 5 Y5 Y6, I 6 Y6 Y7, J 7 Y7 Y8, K 8 Y8 Y9; L 9 Y9);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4, G 4 Y4 Y5, H 5 Y5 Y6, I 6 Y6 Y7, J 7 Y7 Y8, K 8 Y8 Y9, L 9 Y9 Y10; M 10 Y10);
sequential_forward!(A 0 X Y1, B 1 Y1 Y2, C 2 Y2 Y3, F 3 Y3 Y4, G 4 Y4 Y5, H 5 Y5 Y6, I 6 Y6 Y7, J 7 Y7 Y8, K 8 Y8 Y9, L 9 Y9 Y10, M 10 Y10 Y11; N 11 Y11);
