//! The PKCS#11 (v2.40) C interface, as much of it as sfpair calls: the function list up to
//! `C_Sign`, the structures those calls take, and their constants. Checked against OASIS's
//! `pkcs11f.h`/`pkcs11t.h` (as shipped in p11-kit's `pkcs11.h`): the function list's order is
//! the ABI, every entry before the last one used is declared (unused ones as pointer-sized
//! placeholders), and on Unix the structures have C's natural alignment (no packing).
//!
//! Types only; the calls are made in `pkcs11.rs`, each wrapped in one safe function.

#![allow(dead_code)]

use core::ffi::{c_ulong, c_void};

pub type Ulong = c_ulong;
pub type Rv = Ulong;
pub type SlotId = Ulong;
pub type Session = Ulong;
pub type Object = Ulong;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

#[repr(C)]
pub struct TokenInfo {
    pub label: [u8; 32],
    pub manufacturer: [u8; 32],
    pub model: [u8; 16],
    pub serial: [u8; 16],
    pub flags: Ulong,
    pub counts: [Ulong; 10],
    pub hardware: Version,
    pub firmware: Version,
    pub utc_time: [u8; 16],
}

#[repr(C)]
pub struct Attribute {
    pub kind: Ulong,
    pub value: *mut c_void,
    pub len: Ulong,
}

#[repr(C)]
pub struct Mechanism {
    pub mechanism: Ulong,
    pub parameter: *mut c_void,
    pub len: Ulong,
}

#[repr(C)]
pub struct OaepParams {
    pub hash: Ulong,
    pub mgf: Ulong,
    pub source: Ulong,
    pub source_data: *mut c_void,
    pub source_len: Ulong,
}

#[repr(C)]
pub struct InitArgs {
    pub create_mutex: usize,
    pub destroy_mutex: usize,
    pub lock_mutex: usize,
    pub unlock_mutex: usize,
    pub flags: Ulong,
    pub reserved: *mut c_void,
}

type Unused = usize;
type InitFn = unsafe extern "C" fn(*mut c_void) -> Rv;
pub type CryptInitFn = unsafe extern "C" fn(Session, *const Mechanism, Object) -> Rv;
pub type CryptFn = unsafe extern "C" fn(Session, *const u8, Ulong, *mut u8, *mut Ulong) -> Rv;

/// `CK_FUNCTION_LIST`, in the order of `pkcs11f.h`, up to `C_Sign`.
#[repr(C)]
pub struct FunctionList {
    pub version: Version,
    pub initialize: Option<InitFn>,
    pub finalize: Option<InitFn>,
    get_info: Unused,
    get_function_list: Unused,
    pub get_slot_list: Option<unsafe extern "C" fn(u8, *mut SlotId, *mut Ulong) -> Rv>,
    get_slot_info: Unused,
    pub get_token_info: Option<unsafe extern "C" fn(SlotId, *mut TokenInfo) -> Rv>,
    get_mechanism_list: Unused,
    get_mechanism_info: Unused,
    init_token: Unused,
    init_pin: Unused,
    set_pin: Unused,
    pub open_session:
        Option<unsafe extern "C" fn(SlotId, Ulong, *mut c_void, *mut c_void, *mut Session) -> Rv>,
    pub close_session: Option<unsafe extern "C" fn(Session) -> Rv>,
    close_all_sessions: Unused,
    get_session_info: Unused,
    get_operation_state: Unused,
    set_operation_state: Unused,
    pub login: Option<unsafe extern "C" fn(Session, Ulong, *const u8, Ulong) -> Rv>,
    logout: Unused,
    create_object: Unused,
    copy_object: Unused,
    destroy_object: Unused,
    get_object_size: Unused,
    get_attribute_value: Unused,
    set_attribute_value: Unused,
    pub find_objects_init: Option<unsafe extern "C" fn(Session, *const Attribute, Ulong) -> Rv>,
    pub find_objects: Option<unsafe extern "C" fn(Session, *mut Object, Ulong, *mut Ulong) -> Rv>,
    pub find_objects_final: Option<unsafe extern "C" fn(Session) -> Rv>,
    pub encrypt_init: Option<CryptInitFn>,
    pub encrypt: Option<CryptFn>,
    encrypt_update: Unused,
    encrypt_final: Unused,
    pub decrypt_init: Option<CryptInitFn>,
    pub decrypt: Option<CryptFn>,
    decrypt_update: Unused,
    decrypt_final: Unused,
    digest_init: Unused,
    digest: Unused,
    digest_update: Unused,
    digest_key: Unused,
    digest_final: Unused,
    pub sign_init: Option<CryptInitFn>,
    pub sign: Option<CryptFn>,
}

pub type GetFunctionList = unsafe extern "C" fn(*mut *const FunctionList) -> Rv;

pub const CKR_OK: Rv = 0;
pub const CKR_DEVICE_REMOVED: Rv = 0x32;
pub const CKR_ENCRYPTED_DATA_INVALID: Rv = 0x40;
pub const CKR_PIN_INCORRECT: Rv = 0xa0;
pub const CKR_PIN_LOCKED: Rv = 0xa4;
pub const CKR_TOKEN_NOT_PRESENT: Rv = 0xe0;
pub const CKR_USER_ALREADY_LOGGED_IN: Rv = 0x100;
pub const CKR_USER_NOT_LOGGED_IN: Rv = 0x101;
pub const CKR_CRYPTOKI_ALREADY_INITIALIZED: Rv = 0x191;

pub const CKF_OS_LOCKING_OK: Ulong = 1 << 1;
pub const CKF_SERIAL_SESSION: Ulong = 1 << 2;
pub const CKU_USER: Ulong = 1;

pub const CKA_CLASS: Ulong = 0;
pub const CKA_LABEL: Ulong = 3;
pub const CKA_ID: Ulong = 0x102;
pub const CKO_PUBLIC_KEY: Ulong = 2;
pub const CKO_PRIVATE_KEY: Ulong = 3;

pub const CKM_RSA_PKCS_OAEP: Ulong = 9;
pub const CKM_SHA256_RSA_PKCS: Ulong = 0x40;
pub const CKM_SHA_1: Ulong = 0x220;
pub const CKG_MGF1_SHA1: Ulong = 1;
pub const CKZ_DATA_SPECIFIED: Ulong = 1;

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets `pkcs11f.h` fixes: C_Initialize is the first pointer after the 2-byte
    /// version (padded to a pointer), C_Sign the 44th.
    #[test]
    fn the_function_list_has_the_c_layout() {
        let p = core::mem::size_of::<usize>();
        assert_eq!(core::mem::offset_of!(FunctionList, initialize), p);
        assert_eq!(core::mem::offset_of!(FunctionList, get_slot_list), 5 * p);
        assert_eq!(core::mem::offset_of!(FunctionList, open_session), 13 * p);
        assert_eq!(core::mem::offset_of!(FunctionList, login), 19 * p);
        assert_eq!(
            core::mem::offset_of!(FunctionList, find_objects_init),
            27 * p
        );
        assert_eq!(core::mem::offset_of!(FunctionList, encrypt_init), 30 * p);
        assert_eq!(core::mem::offset_of!(FunctionList, decrypt_init), 34 * p);
        assert_eq!(core::mem::offset_of!(FunctionList, sign), 44 * p);
        assert_eq!(
            core::mem::size_of::<TokenInfo>(),
            96 + 11 * core::mem::size_of::<Ulong>() + 4 + 16 + pad()
        );
    }

    /// The tail padding after utc_time, to the Ulong's alignment.
    fn pad() -> usize {
        let a = core::mem::align_of::<Ulong>();
        let raw = 96 + 11 * core::mem::size_of::<Ulong>() + 4 + 16;
        raw.div_ceil(a) * a - raw
    }
}
