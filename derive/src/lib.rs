//! `#[derive(Message)]`: ringport's typed endpoints for a `#[repr(C)]` struct of plain data.
//!
//! The derive writes the struct's layout fingerprint (`ringport::typed::Message::FINGERPRINT`):
//! its name, size and alignment, and each field's name, offset, size and type's own
//! fingerprint, hashed at compile time. A ring made for one type refuses to open as another whose fingerprint
//! differs. The struct must also be `bytemuck::Pod` (derive it): the derive checks `repr(C)`
//! and leaves the rest to bytemuck.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields};

/// Implements `ringport::typed::Message` for a `#[repr(C)]` struct with named fields (or a
/// tuple struct): see the crate documentation.
#[proc_macro_derive(Message)]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let repr_c = input.attrs.iter().any(|attr| {
        attr.path().is_ident("repr")
            && attr
                .parse_nested_meta(|meta| {
                    if meta.path.is_ident("C") || meta.path.is_ident("transparent") {
                        Ok(())
                    } else {
                        Err(meta.error("other repr"))
                    }
                })
                .is_ok()
    });
    if !repr_c {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Message)] needs #[repr(C)]: the layout is what both processes agree on",
        ));
    }
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(Message)] takes no generic struct: give each instance a type of its own",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Message)] is for structs",
        ));
    };
    let name = &input.ident;
    let fields: Vec<proc_macro2::TokenStream> = match &data.fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|field| {
                let ident = field.ident.as_ref().expect("named");
                let ty = &field.ty;
                let label = ident.to_string();
                quote! {
                    ::ringport::typed::Field {
                        name: #label,
                        offset: ::core::mem::offset_of!(#name, #ident),
                        size: ::core::mem::size_of::<#ty>(),
                        inner: <#ty as ::ringport::typed::Message>::FINGERPRINT.hash,
                    }
                }
            })
            .collect(),
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let ty = &field.ty;
                let member = syn::Index::from(index);
                let label = index.to_string();
                quote! {
                    ::ringport::typed::Field {
                        name: #label,
                        offset: ::core::mem::offset_of!(#name, #member),
                        size: ::core::mem::size_of::<#ty>(),
                        inner: <#ty as ::ringport::typed::Message>::FINGERPRINT.hash,
                    }
                }
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    let label = name.to_string();
    Ok(quote! {
        impl ::ringport::typed::Message for #name {
            const FINGERPRINT: ::ringport::typed::Fingerprint =
                ::ringport::typed::Fingerprint::of_struct::<#name>(#label, &[#(#fields),*]);
        }
    })
}
