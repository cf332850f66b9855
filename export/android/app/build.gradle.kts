plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.kerasdeblur.sample"
    compileSdk = 35
    defaultConfig {
        applicationId = "org.kerasdeblur.sample"
        minSdk = 24 // LiteRT 2.x AARs need API 24+
        targetSdk = 35
    }
    // .tflite files must stay uncompressed in the APK so LiteRT can map them.
    androidResources { noCompress += "tflite" }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation("com.google.ai.edge.litert:litert:2.3.0")
    // The GPU accelerator is a separate artifact from 2.3.0; without it the GPU attempt throws
    // and Deblurrer falls back to the CPU.
    implementation("com.google.ai.edge.litert:litert-gpu:2.3.0")
}
