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

    /// The same error with a field's name written as the command line's
    /// flag (`checkpoint_every` -> `--checkpoint-every`): the engines name
    /// the field they were given, the binary shows the flag that set it.
    /// Names that are not a bare field (a file, a key in it, an environment
    /// variable, a flag already) are left as they are.
    pub fn with_flag_names(self) -> Self {
        match self {
            Error::Invalid { flag, message } => {
                let is_field = !flag.is_empty()
                    && flag
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                Error::Invalid {
                    flag: if is_field {
                        format!("--{}", flag.replace('_', "-"))
                    } else {
                        flag
                    },
                    message,
                }
            }
            other => other,
        }
    }

    /// Exit code for the binary: 2 for bad input and a missing adapter (the
    /// user can fix both), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid { .. } | Error::NoAdapter => 2,
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
