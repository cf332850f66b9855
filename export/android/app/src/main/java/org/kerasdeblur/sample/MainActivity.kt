package org.kerasdeblur.sample

import android.app.Activity
import android.graphics.BitmapFactory
import android.os.Bundle
import android.widget.ImageView
import android.widget.TextView
import android.widget.LinearLayout
import kotlin.concurrent.thread

/** Deblurs assets/blurred.jpg with assets/generator_fp16_256x256.tflite and shows the result. */
class MainActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val status = TextView(this).apply { text = "Deblurring..." }
        val image = ImageView(this).apply { adjustViewBounds = true }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(status)
            addView(image)
        })
        // Inference off the UI thread; a 12 MP photo takes seconds even on a GPU.
        thread {
            val blurred = assets.open("blurred.jpg").use { BitmapFactory.decodeStream(it) }
            Deblurrer(this, "generator_fp16_256x256.tflite").use { deblurrer ->
                val start = System.nanoTime()
                val sharp = deblurrer.deblur(blurred)
                val seconds = (System.nanoTime() - start) / 1e9
                runOnUiThread {
                    image.setImageBitmap(sharp)
                    status.text = "%s: %.2f s".format(deblurrer.accelerator, seconds)
                }
            }
        }
    }
}
