//! CUDA C kernels compiled with NVRTC, NVIDIA's runtime compiler, at first use.
//!
//! Each kernel source of the crate is a [`KernelSource`]: CUDA C written against an
//! element type named `T`, compiled once per element type with `typedef <C type> T;`
//! in front of it. A device compiles a source to CUBIN for its own architecture
//! (`sm_XY` from its compute capability) the first time one of the source's functions
//! is needed, and keeps the loaded functions for the life of the device
//! (see `Gpu::function`). Machine code rather than PTX, because the driver refuses PTX
//! from an NVRTC newer than itself, while CUBIN runs on any driver of the same CUDA
//! major version (the PyPI NVRTC is often newer than the installed driver).
//!
//! [`kernel_sources`](crate::kernel_sources) lists every source file, and
//! [`generated_kernel_sources`](crate::generated_kernel_sources) the sources generated
//! from the element-wise ops' declarations (each leaked once, so it is a
//! `KernelSource` too), so CI compiles them all without a GPU
//! (`tests/nvrtc_compile.rs`).
//!
//! NVRTC is loaded at run time as `libnvrtc.so.13` (or `libnvrtc.so`), found through
//! `LD_LIBRARY_PATH` and the system's library paths; see the crate documentation.

use cudarc::nvrtc::{result, sys};
use ferrograd_device::Error;
use std::ffi::{CString, c_char};
use std::sync::OnceLock;

/// One CUDA C source file of this crate and what it defines.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// The file's name without `.cu`: `fill` for `src/fill.cu`. Compiler messages name
    /// the file `<name>.cu` with its own line numbers.
    pub name: &'static str,
    /// The CUDA C text. It refers to the element type as `T` and defines its kernels
    /// `extern "C"`, so their names are not mangled.
    pub source: &'static str,
    /// The `extern "C" __global__` functions it defines. Names are unique across all
    /// sources, since a device keeps loaded functions by name and element type.
    pub functions: &'static [&'static str],
    /// The C types `T` may be (see [`CudaElement::C_TYPE`](crate::CudaElement::C_TYPE)).
    pub element_types: &'static [&'static str],
}

impl KernelSource {
    /// Compiles the source for `element_type` (one of [`Self::element_types`]) to PTX
    /// text for the virtual architecture `arch` (`compute_80`, say). Needs NVRTC, not a
    /// GPU.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an element type the source does not support;
    /// [`Error::Device`] when NVRTC cannot be loaded or the source does not compile (the
    /// message holds NVRTC's log).
    pub fn compile_ptx(&self, element_type: &str, arch: &str) -> Result<String, Error> {
        let program = self.compile(element_type, arch)?;
        // SAFETY: `program` holds a live program that compiled successfully.
        let ptx = unsafe { result::get_ptx(program.handle) }
            .map_err(|e| nvrtc_error(format!("NVRTC could not return the PTX of {}: {:?}", self.name, e.0)))?;
        Ok(c_chars_to_string(&ptx))
    }

    /// Compiles the source for `element_type` to machine code (CUBIN, an ELF image) for
    /// the real architecture `arch` (`sm_90`, say). Needs NVRTC, not a GPU.
    ///
    /// # Errors
    /// As [`Self::compile_ptx`].
    pub fn compile_cubin(&self, element_type: &str, arch: &str) -> Result<Vec<u8>, Error> {
        let program = self.compile(element_type, arch)?;
        let fail =
            |e: sys::nvrtcResult| nvrtc_error(format!("NVRTC could not return the CUBIN of {}: {e:?}", self.name));
        let mut size = 0usize;
        // SAFETY: `program` holds a live program that compiled successfully; NVRTC
        // writes one `usize` through the pointer.
        unsafe { sys::nvrtcGetCUBINSize(program.handle, &mut size) }
            .result()
            .map_err(|e| fail(e.0))?;
        if size == 0 {
            return Err(nvrtc_error(format!(
                "NVRTC made no CUBIN for {} with --gpu-architecture={arch} (a real architecture, sm_XY, is needed)",
                self.name
            )));
        }
        let mut cubin = vec![0u8; size];
        // SAFETY: as above, and `cubin` has the `size` bytes NVRTC said it writes.
        unsafe { sys::nvrtcGetCUBIN(program.handle, cubin.as_mut_ptr().cast::<c_char>()) }
            .result()
            .map_err(|e| fail(e.0))?;
        Ok(cubin)
    }

    fn compile(&self, element_type: &str, arch: &str) -> Result<Program, Error> {
        if !self.element_types.contains(&element_type) {
            return Err(Error::InvalidArgument {
                op: "compile kernel",
                message: format!(
                    "{}.cu is written for element types {:?}, not {element_type:?}",
                    self.name, self.element_types
                ),
            });
        }
        require_nvrtc()?;
        let file = format!("{}.cu", self.name);
        // `#line` makes NVRTC's messages give the line numbers of the file itself.
        let text = format!("typedef {element_type} T;\n#line 1 \"{file}\"\n{}", self.source);
        let program = Program::create(&text, &file)?;
        let options = [format!("--gpu-architecture={arch}")];
        // SAFETY: `program` holds a live program from `create_program`.
        if let Err(e) = unsafe { result::compile_program(program.handle, &options) } {
            // SAFETY: the same live program.
            let log = match unsafe { result::get_program_log(program.handle) } {
                Ok(log) => c_chars_to_string(&log),
                Err(log_error) => format!("(NVRTC gave no log: {:?})", log_error.0),
            };
            return Err(nvrtc_error(format!(
                "NVRTC could not compile {file} for T = {element_type} with {options:?}: {:?}\n{}",
                e.0,
                log.trim_end()
            )));
        }
        Ok(program)
    }
}

/// The version of the NVRTC library found, as (major, minor): `(13, 0)`.
///
/// # Errors
/// [`Error::Device`] when no NVRTC library can be loaded; its message says where it
/// is looked for.
pub fn nvrtc_version() -> Result<(i32, i32), Error> {
    require_nvrtc()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loaded (checked above); the call writes one int through each pointer.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| nvrtc_error(format!("nvrtcVersion failed: {:?}", e.0)))?;
    Ok((major, minor))
}

/// `Ok` when the NVRTC library can be loaded. cudarc panics on the first NVRTC call
/// when it cannot, so every entry point checks this first.
fn require_nvrtc() -> Result<(), Error> {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to open the library under its usual names (running its
    // initialisers, as any use of it would); nothing in it is called.
    let present = *PRESENT.get_or_init(|| unsafe { sys::is_culib_present() });
    if present {
        Ok(())
    } else {
        Err(nvrtc_error(
            "NVRTC could not be loaded: no libnvrtc.so.13 or libnvrtc.so on the library path. Install \
             the CUDA 13 toolkit, or `pip install nvidia-cuda-nvrtc` and add its \
             site-packages/nvidia/cu13/lib directory to LD_LIBRARY_PATH"
                .into(),
        ))
    }
}

fn nvrtc_error(message: String) -> Error {
    Error::Device {
        device: "cuda".into(),
        message,
    }
}

/// An NVRTC program, destroyed on drop.
struct Program {
    handle: sys::nvrtcProgram,
    // NVRTC may refer to the source and the name until the program is destroyed.
    _text: CString,
    _name: CString,
}

impl Program {
    fn create(text: &str, name: &str) -> Result<Self, Error> {
        let nul = |what: &str| nvrtc_error(format!("the {what} of {name} contains a NUL byte"));
        let text = CString::new(text).map_err(|_| nul("source"))?;
        let c_name = CString::new(name).map_err(|_| nul("name"))?;
        let handle = result::create_program(&text, Some(&c_name))
            .map_err(|e| nvrtc_error(format!("NVRTC could not create a program for {name}: {:?}", e.0)))?;
        Ok(Self {
            handle,
            _text: text,
            _name: c_name,
        })
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program came from `create_program` and is destroyed only here.
        // Failing to destroy it leaks it, which is all a drop could do about it.
        let _ = unsafe { result::destroy_program(self.handle) };
    }
}

/// NVRTC's NUL-terminated output as text.
fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
