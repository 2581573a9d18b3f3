//! [`settings_group!`](crate::settings_group): how a group of settings is declared, by
//! the core's groups and by front ends alike (exported at the crate root).

/// Declares a group of settings: a struct with one public field per setting (its key, type
/// and default written beside it), its `Default`, and its [`Settings`](crate::config::Settings) implementation.
///
/// ```
/// refbook_core::settings_group! {
///     /// What my front end reads.
///     pub struct MySettings {
///         /// Greeting shown at start.
///         greeting ("my_greeting"): String = "hello".to_owned();
///     }
/// }
/// let mut mine = MySettings::default();
/// let layers = refbook_core::config::Layers::read(
///     None,
///     [("REFBOOK_MY_GREETING".to_owned(), "hi".to_owned())],
///     &[],
/// )?;
/// layers.fill(&mut [&mut mine])?;
/// assert_eq!(mine.greeting, "hi");
/// # Ok::<(), refbook_core::config::ConfigError>(())
/// ```
#[macro_export]
macro_rules! settings_group {
    (
        $(#[doc = $group_doc:literal])*
        $vis:vis struct $group:ident {
            $( $(#[doc = $doc:literal])* $field:ident ($key:literal) : $ty:ty = $default:expr ; )*
        }
    ) => {
        $(#[doc = $group_doc])*
        #[derive(Debug, Clone)]
        $vis struct $group {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("Key `", $key, "`.")]
                pub $field: $ty,
            )*
        }

        impl Default for $group {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $crate::config::Settings for $group {
            fn keys(&self) -> Vec<&'static str> {
                vec![ $( $key, )* ]
            }

            fn set(
                &mut self,
                key: &str,
                text: &str,
            ) -> Result<bool, $crate::config::ConfigError> {
                match key {
                    $( $key => {
                        self.$field = <$ty as $crate::config::ConfigValue>::parse_value(text)
                            .map_err(|reason| $crate::config::ConfigError::invalid(key, reason))?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }
        }
    };
}
