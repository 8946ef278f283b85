//! PKCS#11 tokens (a TPM through tpm2-pkcs11, a secure element, OP-TEE, SoftHSM): the module
//! loaded at run time with `dlopen`, and the few operations sfpair needs, each a safe function:
//! sign RS256 (`CKM_SHA256_RSA_PKCS`, the JWT bearer assertion) and wrap or unwrap a data key
//! (`CKM_RSA_PKCS_OAEP` with SHA-1 and MGF1-SHA-1, the one parameter set every token has:
//! SoftHSM 2.6 refuses the others; SHA-1's collisions do not weaken OAEP) with an RSA key pair
//! in the token.
//!
//! Our own binding of a dozen `C_*` calls (`ffi.rs`), not the cryptoki crate: smaller on armv7
//! for the same calls (BENCHMARKS.md, "Sealing"), and libc's `dlopen` is already linked. A
//! module is loaded and initialized once per process (`CKF_OS_LOCKING_OK`: the broker's threads
//! may share it) and never unloaded. Each operation opens its own session and closes it.
//!
//! The private key never leaves the token: sfpair only holds handles. The PIN comes from a
//! file (`--pkcs11-pin-file`, the URI's `pin-source`, or the service's `pkcs11-pin`
//! credential), is held wiped-on-drop, and is never in an argument, a message or a log.
//! Statically linked builds (musl) cannot load modules: they say so.

mod ffi;
pub mod uri;

use core::ffi::c_void;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zeroize::Zeroizing;

pub use uri::Uri;

use crate::error::Error;
use crate::secret::Secret;

/// The modules loaded so far: their path and function list (leaked: never unloaded).
static MODULES: Mutex<Vec<(PathBuf, &'static ffi::FunctionList)>> = Mutex::new(Vec::new());

fn rv_name(rv: ffi::Rv) -> String {
    let name = match rv {
        ffi::CKR_DEVICE_REMOVED => "CKR_DEVICE_REMOVED",
        ffi::CKR_ENCRYPTED_DATA_INVALID => "CKR_ENCRYPTED_DATA_INVALID",
        ffi::CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        ffi::CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        ffi::CKR_TOKEN_NOT_PRESENT => "CKR_TOKEN_NOT_PRESENT",
        ffi::CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN (no PIN given?)",
        _ => return format!("CKR 0x{rv:x}"),
    };
    name.into()
}

fn check(rv: ffi::Rv, call: &str) -> Result<(), Error> {
    if rv == ffi::CKR_OK {
        return Ok(());
    }
    Err(Error::config(format!("{call} failed: {}", rv_name(rv))))
}

fn missing(call: &str) -> Error {
    Error::config(format!("the PKCS#11 module has no {call}"))
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl call on this thread.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        return "unknown error".into();
    }
    // SAFETY: non-null, NUL-terminated, read at once.
    unsafe { std::ffi::CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// The module at `path`, loaded and initialized once.
fn module(path: &Path) -> Result<&'static ffi::FunctionList, Error> {
    let mut loaded = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, list)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(list);
    }
    let shown = path.display();
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::config(format!("the PKCS#11 module path {shown} has a NUL byte")))?;
    // SAFETY: a valid C string; loading a module runs its constructors, which is what a
    // PKCS#11 module is for.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(Error::config(format!(
            "cannot load the PKCS#11 module {shown}: {} (check --pkcs11-module; a statically \
             linked sfpair cannot load modules)",
            dl_error()
        )));
    }
    // SAFETY: a handle from dlopen and a NUL-terminated name.
    let symbol = unsafe { libc::dlsym(handle, c"C_GetFunctionList".as_ptr()) };
    if symbol.is_null() {
        return Err(Error::config(format!(
            "{shown} is not a PKCS#11 module (no C_GetFunctionList)"
        )));
    }
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11 module (pkcs11f.h).
    let get: ffi::GetFunctionList = unsafe { core::mem::transmute(symbol) };
    let mut list: *const ffi::FunctionList = core::ptr::null();
    // SAFETY: the module writes a pointer to its static function list.
    check(unsafe { get(&mut list) }, "C_GetFunctionList")?;
    // SAFETY: non-null after CKR_OK; the module is never unloaded, so the list lives forever.
    let list: &'static ffi::FunctionList = unsafe { list.as_ref() }
        .ok_or_else(|| Error::config(format!("{shown} gave no function list")))?;
    let mut args = ffi::InitArgs {
        create_mutex: 0,
        destroy_mutex: 0,
        lock_mutex: 0,
        unlock_mutex: 0,
        flags: ffi::CKF_OS_LOCKING_OK,
        reserved: core::ptr::null_mut(),
    };
    let initialize = list.initialize.ok_or_else(|| missing("C_Initialize"))?;
    // SAFETY: valid arguments, as pkcs11t.h lays them out.
    let rv = unsafe { initialize((&mut args as *mut ffi::InitArgs).cast()) };
    if rv != ffi::CKR_CRYPTOKI_ALREADY_INITIALIZED {
        check(rv, "C_Initialize")?;
    }
    loaded.push((path.to_path_buf(), list));
    Ok(list)
}

/// Trimmed of blanks, as token labels are padded.
fn field(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes)
        .unwrap_or("")
        .trim_end_matches([' ', '\0'])
}

/// How to reach a token besides its URI: `--pkcs11-module` and `--pkcs11-pin-file`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Access<'a> {
    pub module: Option<&'a Path>,
    pub pin_file: Option<&'a Path>,
}

/// The PIN file: the flag, else the URI's `pin-source`, else the service's `pkcs11-pin`
/// credential; none: no login (a token whose keys need none).
fn pin(uri: &Uri, access: Access) -> Result<Option<Secret>, Error> {
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join("pkcs11-pin"))
        .filter(|p| p.exists());
    let Some(path) = access
        .pin_file
        .map(Path::to_path_buf)
        .or_else(|| uri.pin_source.clone())
        .or(credential)
    else {
        return Ok(None);
    };
    // A secret file's rules (files.rs): a regular file of this user or root, mode 0600.
    const WHAT: &str = "the PKCS#11 PIN file";
    let bytes = crate::files::read_secret(&path, 256, WHAT)?;
    crate::files::secret_text(&bytes, &path, WHAT).map(Some)
}

/// A session with the token a URI names (logged in when there is a PIN), closed on drop.
pub struct Session {
    list: &'static ffi::FunctionList,
    handle: ffi::Session,
    /// The URI's token and object, for messages.
    what: String,
}

/// The objects an operation uses.
#[derive(Clone, Copy)]
enum Class {
    Private,
    Public,
}

impl Session {
    pub fn open(uri: &Uri, access: Access) -> Result<Session, Error> {
        let path = access
            .module
            .map(Path::to_path_buf)
            .or_else(|| uri.module_path.clone())
            .ok_or_else(|| {
                Error::config(
                    "no PKCS#11 module: give --pkcs11-module PATH (SFPAIR_PKCS11_MODULE), or \
                     module-path= in the URI",
                )
            })?;
        let list = module(&path)?;
        let what = format!(
            "token '{}' (module {})",
            uri.token.as_deref().unwrap_or("*"),
            path.display()
        );
        let slot = find_slot(list, uri, &what)?;
        let open = list.open_session.ok_or_else(|| missing("C_OpenSession"))?;
        let mut handle = 0;
        // SAFETY: a slot the module listed; no callback.
        let rv = unsafe {
            open(
                slot,
                ffi::CKF_SERIAL_SESSION,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                &mut handle,
            )
        };
        check(rv, "C_OpenSession")?;
        let session = Session { list, handle, what };
        if let Some(pin) = pin(uri, access)? {
            session.login(pin.expose())?;
        }
        Ok(session)
    }

    fn login(&self, pin: &str) -> Result<(), Error> {
        let login = self.list.login.ok_or_else(|| missing("C_Login"))?;
        // SAFETY: an open session; the PIN's bytes and length.
        let rv = unsafe {
            login(
                self.handle,
                ffi::CKU_USER,
                pin.as_ptr(),
                pin.len() as ffi::Ulong,
            )
        };
        match rv {
            ffi::CKR_OK | ffi::CKR_USER_ALREADY_LOGGED_IN => Ok(()),
            ffi::CKR_PIN_INCORRECT | ffi::CKR_PIN_LOCKED => Err(Error::config(format!(
                "the {} refused the PIN ({}): check the PIN file; every wrong try counts \
                 toward locking the token",
                self.what,
                rv_name(rv)
            ))),
            rv => check(rv, "C_Login"),
        }
    }

    /// The one key of `class` the URI names.
    fn find(&self, uri: &Uri, class: Class) -> Result<ffi::Object, Error> {
        let mut class_value: ffi::Ulong = match class {
            Class::Private => ffi::CKO_PRIVATE_KEY,
            Class::Public => ffi::CKO_PUBLIC_KEY,
        };
        let mut template = vec![ffi::Attribute {
            kind: ffi::CKA_CLASS,
            value: (&mut class_value as *mut ffi::Ulong).cast(),
            len: core::mem::size_of::<ffi::Ulong>() as ffi::Ulong,
        }];
        let mut label = uri.object.clone().unwrap_or_default().into_bytes();
        if uri.object.is_some() {
            template.push(ffi::Attribute {
                kind: ffi::CKA_LABEL,
                value: label.as_mut_ptr().cast(),
                len: label.len() as ffi::Ulong,
            });
        }
        let mut id = uri.id.clone().unwrap_or_default();
        if uri.id.is_some() {
            template.push(ffi::Attribute {
                kind: ffi::CKA_ID,
                value: id.as_mut_ptr().cast(),
                len: id.len() as ffi::Ulong,
            });
        }
        let init = self
            .list
            .find_objects_init
            .ok_or_else(|| missing("C_FindObjectsInit"))?;
        let find = self
            .list
            .find_objects
            .ok_or_else(|| missing("C_FindObjects"))?;
        let done = self
            .list
            .find_objects_final
            .ok_or_else(|| missing("C_FindObjectsFinal"))?;
        // SAFETY: the template's pointers live until the search ends below.
        check(
            unsafe { init(self.handle, template.as_ptr(), template.len() as ffi::Ulong) },
            "C_FindObjectsInit",
        )?;
        let mut found = [0 as ffi::Object; 2];
        let mut count: ffi::Ulong = 0;
        // SAFETY: room for two handles.
        let rv = unsafe { find(self.handle, found.as_mut_ptr(), 2, &mut count) };
        // SAFETY: the search started above.
        unsafe { done(self.handle) };
        check(rv, "C_FindObjects")?;
        let kind = match class {
            Class::Private => "private key",
            Class::Public => "public key",
        };
        let named = uri.object.as_deref().unwrap_or("with that id");
        match count {
            1 => Ok(found[0]),
            0 => Err(Error::config(format!(
                "the {} has no {kind} '{named}' (or it needs a login: give the PIN file)",
                self.what
            ))),
            _ => Err(Error::config(format!(
                "the {} has more than one {kind} '{named}': add id= to the URI",
                self.what
            ))),
        }
    }

    /// `init` then two calls of `op`: the length, then the output.
    fn crypt(
        &self,
        init_call: (&str, Option<ffi::CryptInitFn>),
        op_call: (&str, Option<ffi::CryptFn>),
        mechanism: &ffi::Mechanism,
        key: ffi::Object,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let init = init_call.1.ok_or_else(|| missing(init_call.0))?;
        let op = op_call.1.ok_or_else(|| missing(op_call.0))?;
        // SAFETY: a mechanism whose parameters outlive the operation; a key handle found in
        // this session.
        check(unsafe { init(self.handle, mechanism, key) }, init_call.0)?;
        let mut len: ffi::Ulong = 0;
        // SAFETY: a null output asks for the length (PKCS#11 §5.2); the operation goes on.
        let rv = unsafe {
            op(
                self.handle,
                input.as_ptr(),
                input.len() as ffi::Ulong,
                core::ptr::null_mut(),
                &mut len,
            )
        };
        check(rv, op_call.0)?;
        let mut out = Zeroizing::new(vec![0u8; len as usize]);
        // SAFETY: `len` bytes of room, as the module asked.
        let rv = unsafe {
            op(
                self.handle,
                input.as_ptr(),
                input.len() as ffi::Ulong,
                out.as_mut_ptr(),
                &mut len,
            )
        };
        check(rv, op_call.0)?;
        out.truncate(len as usize);
        Ok(out)
    }

    /// The RS256 signature of `message` by the private key the URI names.
    pub fn sign_rs256(&self, uri: &Uri, message: &[u8]) -> Result<Vec<u8>, Error> {
        let key = self.find(uri, Class::Private)?;
        let mechanism = ffi::Mechanism {
            mechanism: ffi::CKM_SHA256_RSA_PKCS,
            parameter: core::ptr::null_mut(),
            len: 0,
        };
        let signature = self.crypt(
            ("C_SignInit", self.list.sign_init),
            ("C_Sign", self.list.sign),
            &mechanism,
            key,
            message,
        )?;
        Ok(signature.to_vec())
    }

    /// `data` encrypted (RSA-OAEP) with the public key the URI names.
    pub fn wrap(&self, uri: &Uri, data: &[u8]) -> Result<Vec<u8>, Error> {
        let key = self.find(uri, Class::Public)?;
        let mut params = oaep();
        let mechanism = oaep_mechanism(&mut params);
        let out = self.crypt(
            ("C_EncryptInit", self.list.encrypt_init),
            ("C_Encrypt", self.list.encrypt),
            &mechanism,
            key,
            data,
        )?;
        Ok(out.to_vec())
    }

    /// What [`wrap`](Session::wrap) wrapped, decrypted inside the token (wiped on drop).
    pub fn unwrap(&self, uri: &Uri, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let key = self.find(uri, Class::Private)?;
        let mut params = oaep();
        let mechanism = oaep_mechanism(&mut params);
        self.crypt(
            ("C_DecryptInit", self.list.decrypt_init),
            ("C_Decrypt", self.list.decrypt),
            &mechanism,
            key,
            wrapped,
        )
    }

    /// The token and module, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }
}

fn oaep() -> ffi::OaepParams {
    ffi::OaepParams {
        hash: ffi::CKM_SHA_1,
        mgf: ffi::CKG_MGF1_SHA1,
        source: ffi::CKZ_DATA_SPECIFIED,
        source_data: core::ptr::null_mut(),
        source_len: 0,
    }
}

fn oaep_mechanism(params: &mut ffi::OaepParams) -> ffi::Mechanism {
    ffi::Mechanism {
        mechanism: ffi::CKM_RSA_PKCS_OAEP,
        parameter: (params as *mut ffi::OaepParams).cast::<c_void>(),
        len: core::mem::size_of::<ffi::OaepParams>() as ffi::Ulong,
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(close) = self.list.close_session {
            // SAFETY: the session this value opened.
            unsafe { close(self.handle) };
        }
    }
}

/// The one slot whose token matches the URI.
fn find_slot(list: &ffi::FunctionList, uri: &Uri, what: &str) -> Result<ffi::SlotId, Error> {
    let get_slots = list.get_slot_list.ok_or_else(|| missing("C_GetSlotList"))?;
    let get_info = list
        .get_token_info
        .ok_or_else(|| missing("C_GetTokenInfo"))?;
    let mut count: ffi::Ulong = 0;
    // SAFETY: a null list asks for the count of slots with a token present.
    check(
        unsafe { get_slots(1, core::ptr::null_mut(), &mut count) },
        "C_GetSlotList",
    )?;
    let mut slots = vec![0 as ffi::SlotId; count as usize];
    // SAFETY: room for `count` slot ids.
    check(
        unsafe { get_slots(1, slots.as_mut_ptr(), &mut count) },
        "C_GetSlotList",
    )?;
    slots.truncate(count as usize);
    let mut matching = Vec::new();
    for slot in slots {
        // SAFETY: TokenInfo is plain bytes and integers; the module fills it.
        let mut info: ffi::TokenInfo = unsafe { core::mem::zeroed() };
        // SAFETY: a slot the module listed, and room for its info.
        if unsafe { get_info(slot, &mut info) } != ffi::CKR_OK {
            continue;
        }
        let wanted =
            |want: &Option<String>, got: &[u8]| want.as_deref().is_none_or(|w| w == field(got));
        if wanted(&uri.token, &info.label)
            && wanted(&uri.manufacturer, &info.manufacturer)
            && wanted(&uri.model, &info.model)
            && wanted(&uri.serial, &info.serial)
        {
            matching.push(slot);
        }
    }
    match matching[..] {
        [slot] => Ok(slot),
        [] => Err(Error::config(format!(
            "the {what} is not present: insert it, or check token= in the URI"
        ))),
        _ => Err(Error::config(format!(
            "more than one token matches the {what}: add serial= to the URI"
        ))),
    }
}
