// The one translation unit that compiles stb's implementations (image decode, PNG encode), so the project does not
// depend on Debian's libstb.so (whose build options we cannot see) and every tool gets the same decoders.
// Compiled as C++11+, stb keeps its failure reason in a thread_local (STBI_THREAD_LOCAL), which decode relies on.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif

// The dataset formats only (docs/datasets.md): less decoder surface for em-serve, which decodes untrusted
// request bodies.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_ONLY_PNM
#define STBI_NO_STDIO
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// stb never clears its failure reason, so a decoder that fails without setting one would report the previous
// failure's reason (of this thread). decode_image() clears it before each call.
void em_stbi_clear_failure_reason() { stbi__g_failure_reason = nullptr; }
