//! The macro's arguments: `policy = "..."`, `tables = "..."`, `abis = [...]`.

use std::path::{Path, PathBuf};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token, bracketed};

/// Resolved inputs of one expansion.
pub(crate) struct Args {
    pub(crate) tables: PathBuf,
    pub(crate) policy: PathBuf,
    pub(crate) abis: Vec<String>,
    /// Whether `tables` is the bundled directory (its build script watches it).
    pub(crate) bundled_tables: bool,
    /// Whether `policy` is the bundled policy (watched with the tables).
    pub(crate) bundled_policy: bool,
    /// Environment variables the paths used: their values are part of the input.
    pub(crate) vars: Vec<String>,
}

/// The tables shipped inside this crate (`tables/` is packaged with it).
fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tables")
}

impl Args {
    /// The bundled policy and tables, every ABI.
    pub(crate) fn bundled() -> Args {
        Args::bundled_policy("root-emulation.yaml")
    }

    /// A bundled policy (a file of `tables/policy/`) over the bundled tables, every ABI.
    pub(crate) fn bundled_policy(file: &str) -> Args {
        Args {
            tables: bundled_dir(),
            policy: bundled_dir().join("policy").join(file),
            abis: Vec::new(),
            bundled_tables: true,
            bundled_policy: true,
            vars: Vec::new(),
        }
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::bundled();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            let name = key.to_string();
            if seen.contains(&name) {
                return Err(syn::Error::new(key.span(), format!("`{name}` is given twice")));
            }
            input.parse::<Token![=]>()?;
            match name.as_str() {
                "policy" => {
                    args.policy = resolve(&input.parse::<LitStr>()?, &mut args.vars)?;
                    args.bundled_policy = false;
                }
                "tables" => {
                    args.tables = resolve(&input.parse::<LitStr>()?, &mut args.vars)?;
                    args.bundled_tables = false;
                }
                "abis" => {
                    let content;
                    bracketed!(content in input);
                    while !content.is_empty() {
                        let abi =
                            if content.peek(LitStr) { content.parse::<LitStr>()?.value() } else { content.parse::<Ident>()?.to_string() };
                        args.abis.push(abi);
                        if !content.is_empty() {
                            content.parse::<Token![,]>()?;
                        }
                    }
                }
                _ => return Err(syn::Error::new(key.span(), format!("unknown argument `{name}` (expected policy, tables or abis)"))),
            }
            seen.push(name);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// Expands `$VAR`/`${VAR}` (adding each name to `vars`) and makes a relative path relative
/// to the calling crate.
fn resolve(lit: &LitStr, vars: &mut Vec<String>) -> syn::Result<PathBuf> {
    let raw = lit.value();
    let mut out = String::new();
    let mut rest = raw.as_str();
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(b) => b.split_once('}').ok_or_else(|| syn::Error::new(lit.span(), "unclosed `${` in path"))?,
            None => after.split_at(after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len())),
        };
        let value = std::env::var(name)
            .map_err(|_| syn::Error::new(lit.span(), format!("environment variable `{name}` in path `{raw}` is not set")))?;
        out.push_str(&value);
        vars.push(name.to_string());
        rest = tail;
    }
    out.push_str(rest);
    let path = PathBuf::from(out);
    if path.is_absolute() {
        return Ok(path);
    }
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .ok_or_else(|| syn::Error::new(lit.span(), "CARGO_MANIFEST_DIR is not set: relative paths need cargo"))?;
    Ok(Path::new(&base).join(path))
}
