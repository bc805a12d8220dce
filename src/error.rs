//! Errors are values: one enum for the library; the binary maps it to exit codes.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad user input: names the flag (or key) and what is accepted.
    #[error("{flag}: {message}")]
    Invalid { flag: String, message: String },

    #[error(
        "no GPU adapter found: install a GPU driver, or the software Vulkan adapter \
         (Debian/Ubuntu: apt-get install mesa-vulkan-drivers); `--device cpu` runs the CPU reference engine"
    )]
    NoAdapter,

    #[error("GPU: {0}")]
    Gpu(String),

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("output: {0}")]
    Output(String),
}

impl Error {
    pub fn invalid(flag: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            flag: flag.into(),
            message: message.into(),
        }
    }

    /// The same error with a flag's name written as the library's field
    /// name (`--sigma-w2` -> `sigma_w2`), for callers of the library.
    pub fn with_field_names(self) -> Self {
        match self {
            Error::Invalid { flag, message } => Error::Invalid {
                flag: match flag.strip_prefix("--") {
                    Some(name) => name.replace('-', "_"),
                    None => flag,
                },
                message,
            },
            other => other,
        }
    }

    /// The same error as the command line words it: a library field in the
    /// flag position (`checkpoint_every`, also after a label such as a
    /// suite case's) becomes its flag (`--checkpoint-every`), and so does
    /// each field such an error's message names in backticks (`` `batch` ``
    /// -> `--batch`). Other errors are left as they are.
    pub fn with_flag_names(self) -> Self {
        let Error::Invalid { flag, message } = self else {
            return self;
        };
        let (label, field) = match flag.rsplit_once(": ") {
            Some((label, field)) => (format!("{label}: "), field),
            None => (String::new(), flag.as_str()),
        };
        let Some(cli_flag) = flag_of(field) else {
            return Error::Invalid { flag, message };
        };
        let mut message = message;
        for (field, cli_flag) in FIELD_FLAGS {
            message = message.replace(&format!("`{field}`"), cli_flag);
        }
        Error::Invalid {
            flag: format!("{label}{cli_flag}"),
            message,
        }
    }

    /// Exit code for the binary: 2 for bad input and a missing adapter (the
    /// user can fix both: arguments, unreadable or malformed files,
    /// destinations that cannot be written), 3 for a failure at run time
    /// (the device, a full disk, a plot that cannot be drawn). 1 is left
    /// to `check` and `compare`: a comparison failed.
    pub fn exit_code(&self) -> i32 {
        use std::io::ErrorKind::*;
        match self {
            Error::Invalid { .. } | Error::NoAdapter => 2,
            Error::Io { source, .. } => match source.kind() {
                NotFound | PermissionDenied | AlreadyExists | InvalidInput | InvalidData
                | IsADirectory | NotADirectory | ReadOnlyFilesystem | InvalidFilename => 2,
                _ => 3,
            },
            Error::Gpu(_) | Error::Output(_) => 3,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The fields library errors name (the GPU engines' options and checks) and
/// the flags that set them on the command line.
const FIELD_FLAGS: &[(&str, &str)] = &[
    ("adapter", "--adapter"),
    ("arch", "--arch"),
    ("batch", "--batch"),
    ("checkpoint_every", "--checkpoint-every"),
    ("device", "--device"),
    ("engine", "--engine"),
    ("jacobian", "--jacobian"),
    ("max_memory", "--max-memory"),
    ("width", "--width"),
    ("widths", "--widths"),
];

fn flag_of(field: &str) -> Option<&'static str> {
    FIELD_FLAGS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, flag)| *flag)
}
