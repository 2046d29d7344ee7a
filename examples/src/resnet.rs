//! ResNet-18 (He et al., 2015) as torchvision builds it, with torchvision's
//! `state_dict` names, so that `torchvision.models.resnet18()`'s weights load as they
//! are: `conv1.weight`, `bn1.running_mean`, `layer2.0.downsample.0.weight`, `fc.bias`.
//!
//! The widths are run-time values ([`ResNet18Config::base_width`]: torchvision's is
//! 64), so the same code builds the full network and the narrow one the parity test
//! loads from PyTorch; the input's 3 colour channels are a const.
//!
//! The network is generic over the device (`D`, the CPU by default): any device with
//! the [`ConvolutionKernels`] builds and runs it, so the parity test runs it on the
//! test suite's device.

use ferrograd::autodiff::{MergeTapes, ParameterVisitor, ParameterVisitorMut, Pool2dOptions, Prefixed};
use ferrograd::nn::built::{BatchNorm, Conv2D, Linear};
use ferrograd::nn::{BatchNormConfig, Conv2DConfig, LinearConfig};
use ferrograd::prelude::*;

/// A ResNet-18's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNet18Config {
    /// Channels of the stem and the first stage; the stages have 1, 2, 4 and 8 times
    /// as many. torchvision: 64.
    pub base_width: usize,
    /// Outputs of the final linear layer. torchvision: 1000.
    pub num_classes: usize,
}

impl Default for ResNet18Config {
    /// torchvision's `resnet18()`: width 64, 1000 classes.
    fn default() -> Self {
        Self {
            base_width: 64,
            num_classes: 1000,
        }
    }
}

/// A 3×3 convolution without bias (every one in a ResNet is followed by a batch norm).
fn conv3x3(inputs: usize, outputs: usize, stride: usize) -> Conv2DConfig<usize, usize> {
    Conv2DConfig::new(inputs, outputs, 3)
        .stride(stride)
        .padding(1)
        .without_bias()
}

/// A convolution of run-time channels, f32 on `D` (the CPU by default).
pub type Conv<D = Cpu> = Conv2D<usize, usize, f32, D>;

/// A batch norm of run-time channels, f32 on `D` (the CPU by default).
pub type Norm<D = Cpu> = BatchNorm<usize, f32, D>;

/// torchvision's `BasicBlock`: two 3×3 convolutions with batch norms, added to the
/// input (through a strided 1×1 convolution and a batch norm where the size changes).
pub struct BasicBlock<D: ConvolutionKernels<f32> = Cpu> {
    /// The first 3×3 convolution (strided where the stage shrinks the maps).
    pub conv1: Conv<D>,
    /// Its batch norm.
    pub bn1: Norm<D>,
    /// The second 3×3 convolution.
    pub conv2: Conv<D>,
    /// Its batch norm.
    pub bn2: Norm<D>,
    /// The shortcut's 1×1 convolution and batch norm, where the size changes.
    pub downsample: Option<(Conv<D>, Norm<D>)>,
}

impl<D: ConvolutionKernels<f32>> BasicBlock<D> {
    fn build(dev: &D, inputs: usize, outputs: usize, stride: usize) -> Result<Self, Error> {
        let downsample = if stride != 1 || inputs != outputs {
            let conv = Conv2DConfig::new(inputs, outputs, 1).stride(stride).without_bias();
            Some((
                dev.try_build_module_with(conv)?,
                dev.try_build_module_with(BatchNormConfig::new(outputs))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: dev.try_build_module_with(conv3x3(inputs, outputs, stride))?,
            bn1: dev.try_build_module_with(BatchNormConfig::new(outputs))?,
            conv2: dev.try_build_module_with(conv3x3(outputs, outputs, 1))?,
            bn2: dev.try_build_module_with(BatchNormConfig::new(outputs))?,
            downsample,
        })
    }
}

impl<D: ConvolutionKernels<f32>> VisitParameters<f32, D> for BasicBlock<D> {
    fn visit_parameters<V: ParameterVisitor<f32, D>>(&self, visitor: &mut V) -> Result<(), Error> {
        self.conv1.visit_parameters(&mut Prefixed::new("conv1", visitor))?;
        self.bn1.visit_parameters(&mut Prefixed::new("bn1", visitor))?;
        self.conv2.visit_parameters(&mut Prefixed::new("conv2", visitor))?;
        self.bn2.visit_parameters(&mut Prefixed::new("bn2", visitor))?;
        if let Some(downsample) = &self.downsample {
            downsample.visit_parameters(&mut Prefixed::new("downsample", visitor))?;
        }
        Ok(())
    }

    fn visit_parameters_mut<V: ParameterVisitorMut<f32, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.conv1.visit_parameters_mut(&mut Prefixed::new("conv1", visitor))?;
        self.bn1.visit_parameters_mut(&mut Prefixed::new("bn1", visitor))?;
        self.conv2.visit_parameters_mut(&mut Prefixed::new("conv2", visitor))?;
        self.bn2.visit_parameters_mut(&mut Prefixed::new("bn2", visitor))?;
        if let Some(downsample) = &mut self.downsample {
            downsample.visit_parameters_mut(&mut Prefixed::new("downsample", visitor))?;
        }
        Ok(())
    }
}

/// Feature maps inside the network: batch, channels, height and width.
type Maps<N, D, T> = Tensor<(N, usize, usize, usize), f32, D, T>;

impl<N: Dim, D: ConvolutionKernels<f32>, T: Tape<f32, D> + MergeTapes<T, Output = T>> Module<Maps<N, D, T>>
    for BasicBlock<D>
{
    type Output = Maps<N, D, T>;

    fn try_forward(&self, x: Maps<N, D, T>) -> Result<Self::Output, Error> {
        let identity = match &self.downsample {
            Some(downsample) => downsample.try_forward(x.clone())?,
            None => x.clone(),
        };
        let y = self.bn1.try_forward(self.conv1.try_forward(x)?)?.try_relu()?;
        let y = self.bn2.try_forward(self.conv2.try_forward(y)?)?;
        y.try_add(identity)?.try_relu()
    }
}

impl<N: Dim, D: ConvolutionKernels<f32>, T: Tape<f32, D> + MergeTapes<T, Output = T>> ModuleMut<Maps<N, D, T>>
    for BasicBlock<D>
{
    type Output = Maps<N, D, T>;

    fn try_forward_mut(&mut self, x: Maps<N, D, T>) -> Result<Self::Output, Error> {
        let identity = match &mut self.downsample {
            Some(downsample) => downsample.try_forward_mut(x.clone())?,
            None => x.clone(),
        };
        let y = self.bn1.try_forward_mut(self.conv1.try_forward(x)?)?.try_relu()?;
        let y = self.bn2.try_forward_mut(self.conv2.try_forward(y)?)?;
        y.try_add(identity)?.try_relu()
    }
}

/// A built ResNet-18: torchvision's `ResNet(BasicBlock, [2, 2, 2, 2])`.
///
/// It takes images `(N, 3, H, W)` (any size from 32×32 up; torchvision's weights were
/// trained at 224×224) and gives `(N, num_classes)` logits.
pub struct ResNet18<D: ConvolutionKernels<f32> = Cpu> {
    /// The stem's 7×7 stride-2 convolution.
    pub conv1: Conv2D<Const<3>, usize, f32, D>,
    /// Its batch norm.
    pub bn1: Norm<D>,
    /// The four stages of two blocks: `layer1` … `layer4`.
    pub layers: [(BasicBlock<D>, BasicBlock<D>); 4],
    /// The classifier.
    pub fc: Linear<usize, usize, f32, D>,
}

impl<D: ConvolutionKernels<f32>> BuildOnDevice<f32, D> for ResNet18Config {
    type Built = ResNet18<D>;

    fn try_build_on_device(&self, dev: &D) -> Result<ResNet18<D>, Error> {
        let width = self.base_width;
        let stem = Conv2DConfig::new(Const::<3>, width, 7)
            .stride(2)
            .padding(3)
            .without_bias();
        let stage = |inputs: usize, outputs: usize, stride: usize| -> Result<(BasicBlock<D>, BasicBlock<D>), Error> {
            Ok((
                BasicBlock::build(dev, inputs, outputs, stride)?,
                BasicBlock::build(dev, outputs, outputs, 1)?,
            ))
        };
        Ok(ResNet18 {
            conv1: dev.try_build_module_with(stem)?,
            bn1: dev.try_build_module_with(BatchNormConfig::new(width))?,
            layers: [
                stage(width, width, 1)?,
                stage(width, 2 * width, 2)?,
                stage(2 * width, 4 * width, 2)?,
                stage(4 * width, 8 * width, 2)?,
            ],
            fc: dev.try_build_module_with(LinearConfig::new(8 * width, self.num_classes))?,
        })
    }
}

impl<D: ConvolutionKernels<f32>> VisitParameters<f32, D> for ResNet18<D> {
    fn visit_parameters<V: ParameterVisitor<f32, D>>(&self, visitor: &mut V) -> Result<(), Error> {
        self.conv1.visit_parameters(&mut Prefixed::new("conv1", visitor))?;
        self.bn1.visit_parameters(&mut Prefixed::new("bn1", visitor))?;
        for (stage, blocks) in ["layer1", "layer2", "layer3", "layer4"].iter().zip(&self.layers) {
            blocks.visit_parameters(&mut Prefixed::new(stage, visitor))?;
        }
        self.fc.visit_parameters(&mut Prefixed::new("fc", visitor))
    }

    fn visit_parameters_mut<V: ParameterVisitorMut<f32, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.conv1.visit_parameters_mut(&mut Prefixed::new("conv1", visitor))?;
        self.bn1.visit_parameters_mut(&mut Prefixed::new("bn1", visitor))?;
        for (stage, blocks) in ["layer1", "layer2", "layer3", "layer4"].iter().zip(&mut self.layers) {
            blocks.visit_parameters_mut(&mut Prefixed::new(stage, visitor))?;
        }
        self.fc.visit_parameters_mut(&mut Prefixed::new("fc", visitor))
    }
}

/// The stem's max pool: 3×3, stride 2, padding 1.
fn stem_pool() -> Pool2dOptions {
    Pool2dOptions::default().stride(2).padding(1)
}

impl<N: Dim, H: Dim, W: Dim, D, T> Module<Tensor<(N, Const<3>, H, W), f32, D, T>> for ResNet18<D>
where
    D: ConvolutionKernels<f32>,
    T: Tape<f32, D> + MergeTapes<T, Output = T>,
{
    type Output = Tensor<(N, usize), f32, D, T>;

    fn try_forward(&self, x: Tensor<(N, Const<3>, H, W), f32, D, T>) -> Result<Self::Output, Error> {
        let x = self.bn1.try_forward(self.conv1.try_forward(x)?)?.try_relu()?;
        let mut x = x.try_max_pool2d(3, stem_pool())?;
        for blocks in &self.layers {
            x = blocks.try_forward(x)?;
        }
        self.fc.try_forward(x.try_global_avg_pool2d()?)
    }
}

impl<N: Dim, H: Dim, W: Dim, D, T> ModuleMut<Tensor<(N, Const<3>, H, W), f32, D, T>> for ResNet18<D>
where
    D: ConvolutionKernels<f32>,
    T: Tape<f32, D> + MergeTapes<T, Output = T>,
{
    type Output = Tensor<(N, usize), f32, D, T>;

    fn try_forward_mut(&mut self, x: Tensor<(N, Const<3>, H, W), f32, D, T>) -> Result<Self::Output, Error> {
        let x = self.bn1.try_forward_mut(self.conv1.try_forward(x)?)?.try_relu()?;
        let mut x = x.try_max_pool2d(3, stem_pool())?;
        for blocks in &mut self.layers {
            x = blocks.try_forward_mut(x)?;
        }
        self.fc.try_forward(x.try_global_avg_pool2d()?)
    }
}
